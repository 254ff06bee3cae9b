package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// The benchmarks below are how the count transport and the failure-detection
// timings were chosen (docs/design.md section 4). Each iteration is one
// sample; run with a fixed count so percentiles mean something, e.g.
//
//	go test ./cluster -run '^$' -bench 'Freshness' -benchtime 100x
//	go test ./cluster -run '^$' -bench 'FailedNodeRemoval' -benchtime 5x
//
// Targets: freshness p99 ≤ 1 s in a 10-node cluster; a killed node out of
// every member's Nodes() within 5 s.

const benchClusterSize = 10

func BenchmarkFreshnessUserEvents(b *testing.B) { benchFreshness(b, CountsUserEvents) }
func BenchmarkFreshnessTags(b *testing.B)       { benchFreshness(b, CountsTags) }

// benchFreshness changes a random member's count and measures the time until
// every other member's view shows the new value.
func benchFreshness(b *testing.B, mode CountMode) {
	ms := startCluster(b, benchClusterSize, func(c *Config) { c.CountMode = mode })
	rnd := rand.New(rand.NewPCG(1, 2))
	samples := make([]time.Duration, 0, b.N)
	updates := func() (n int64) {
		for _, m := range ms {
			n += m.updates.Load()
		}
		return n
	}
	updates0 := updates()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src := ms[rnd.IntN(len(ms))]
		want := 1000 + i // every sample publishes a value never seen before
		start := time.Now()
		src.SetConns(want)
		waitSeenByAll(b, ms, src.LocalName(), start, func(m Member, ok bool) bool {
			return ok && m.Conns == want
		})
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, samples, "")
	// Member-update events (incarnation bumps) every member processed per
	// count change: the churn that user events avoid.
	b.ReportMetric(float64(updates()-updates0)/float64(b.N), "member-updates/op")
}

// BenchmarkFailedNodeRemoval kills (Shutdown, no Leave) one member of a
// 10-member LocalConfig cluster per iteration and measures the time until
// every other member's Nodes() excludes it; then a fresh member replaces it.
func BenchmarkFailedNodeRemoval(b *testing.B) { benchRemoval(b, nil) }

// BenchmarkFailedNodeRemovalLAN is the same with DefaultConfig's LAN
// failure-detection timings (still on loopback).
func BenchmarkFailedNodeRemovalLAN(b *testing.B) { benchRemoval(b, lanTimings) }

func lanTimings(c *Config) {
	d := DefaultConfig()
	c.GossipInterval, c.GossipNodes = d.GossipInterval, d.GossipNodes
	c.ProbeInterval, c.ProbeTimeout = d.ProbeInterval, d.ProbeTimeout
	c.SuspicionMult, c.SuspicionMaxTimeoutMult = d.SuspicionMult, d.SuspicionMaxTimeoutMult
	c.IndirectChecks, c.RetransmitMult = d.IndirectChecks, d.RetransmitMult
}

func benchRemoval(b *testing.B, mutate func(*Config)) {
	if b.N > 200 {
		b.Fatalf("b.N = %d: each iteration uses a fresh 127.0.0.x; use -benchtime Nx with N ≤ 200", b.N)
	}
	ms := startCluster(b, benchClusterSize, mutate)
	rnd := rand.New(rand.NewPCG(3, 4))
	next := benchClusterSize + 1
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := 1 + rnd.IntN(len(ms)-1) // keep ms[0], the join seed
		victim := ms[k]
		others := slices.Delete(slices.Clone(ms), k, k+1)
		start := time.Now()
		if err := victim.Shutdown(); err != nil {
			b.Fatal(err)
		}
		waitSeenByAllNodes(b, others, victim.LocalName(), start)
		samples = append(samples, time.Since(start))

		b.StopTimer()
		c := testConfig(next)
		if mutate != nil {
			mutate(c)
		}
		next++
		repl := mustCreate(b, c)
		if _, err := repl.Join([]string{ms[0].GossipAddr()}); err != nil {
			b.Fatal(err)
		}
		ms = append(others, repl)
		probe.Until(b, 30*time.Second, "replacement member converges", func() error {
			for _, m := range ms {
				if k := len(m.Nodes()); k != len(ms) {
					return fmt.Errorf("%s sees %d nodes of %d", m.LocalName(), k, len(ms))
				}
			}
			return nil
		})
		b.StartTimer()
	}
	b.StopTimer()
	reportPercentiles(b, samples, "removal-")
}

// waitSeenByAll polls every member except name itself until seen holds for
// its view of name, within 30 s of start. It polls every millisecond: the
// benchmark measures when the loop ends.
func waitSeenByAll(b *testing.B, ms []*Cluster, name string, start time.Time, seen func(Member, bool) bool) {
	b.Helper()
	pending := make([]*Cluster, 0, len(ms))
	for _, m := range ms {
		if m.LocalName() != name {
			pending = append(pending, m)
		}
	}
	err := probe.Poll(context.Background(), 30*time.Second-time.Since(start), time.Millisecond, "every member to see the change of "+name, func() error {
		pending = slices.DeleteFunc(pending, func(m *Cluster) bool { return seen(m.member(name)) })
		return probe.Check(len(pending) == 0, "%d members have not", len(pending))
	})
	if err != nil {
		b.Fatal(err)
	}
}

func waitSeenByAllNodes(b *testing.B, ms []*Cluster, name string, start time.Time) {
	b.Helper()
	pending := slices.Clone(ms)
	err := probe.Poll(context.Background(), 30*time.Second-time.Since(start), 5*time.Millisecond, "every member to drop "+name+" from Nodes()", func() error {
		pending = slices.DeleteFunc(pending, func(m *Cluster) bool {
			_, ok := findMember(m.Nodes(), name)
			return !ok
		})
		return probe.Check(len(pending) == 0, "%d members still list it", len(pending))
	})
	if err != nil {
		b.Fatal(err)
	}
}

// reportPercentiles reports p50/p99/max in milliseconds (the nearest-rank
// percentile; with fewer than 100 samples p99 is the maximum).
func reportPercentiles(b *testing.B, samples []time.Duration, prefix string) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	pct := func(p float64) float64 {
		i := int(p*float64(len(samples))+0.999999) - 1
		i = max(0, min(i, len(samples)-1))
		return float64(samples[i].Microseconds()) / 1000
	}
	b.ReportMetric(0, "ns/op") // wall time per op is dominated by waiting; the percentiles are the result
	b.ReportMetric(pct(0.50), prefix+"p50-ms")
	b.ReportMetric(pct(0.99), prefix+"p99-ms")
	b.ReportMetric(pct(1.0), prefix+"max-ms")
	if prefix == "removal-" {
		b.ReportMetric(pct(0.50), "removal-ms")
	}
}
