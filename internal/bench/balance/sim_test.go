package balance

import (
	"fmt"
	"strings"
	"testing"
)

// TestSimulateBurstP2CBeatsLeastLoaded is the balance figure of
// docs/design.md section 11: 10 nodes, 3 auth instances, counts 1 s stale,
// a burst of 100k.
func TestSimulateBurstP2CBeatsLeastLoaded(t *testing.T) {
	results := map[Strategy]SimResult{}
	// The other strategies are in BenchmarkSimulateBurst; this keeps the
	// test quick under -race.
	for _, s := range []Strategy{StrategyP2C, StrategyP2COwnPending, StrategyLeastLoaded} {
		c := DefaultSimConfig()
		c.Strategy, c.Seed = s, 1
		r, err := SimulateBurst(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
		results[s] = r
		if r.Refused != 0 {
			t.Errorf("%s refused %d", s, r.Refused)
		}
	}
	p2c, ll := results[StrategyP2C], results[StrategyLeastLoaded]
	if p2c.MaxOverMean > 1.05 {
		t.Errorf("P2C max/mean = %.4f, design target ≤ 1.05", p2c.MaxOverMean)
	}
	if !(p2c.MaxOverMean < ll.MaxOverMean) || !(p2c.PeakMaxOverMean < ll.PeakMaxOverMean) {
		t.Errorf("P2C (%.4f, peak %.4f) does not beat least-loaded (%.4f, peak %.4f)",
			p2c.MaxOverMean, p2c.PeakMaxOverMean, ll.MaxOverMean, ll.PeakMaxOverMean)
	}
	if own := results[StrategyP2COwnPending]; p2c.MaxOverMean > own.MaxOverMean {
		t.Errorf("scaled pending (%.4f) is worse than own pending only (%.4f)", p2c.MaxOverMean, own.MaxOverMean)
	}
	// Same config, same answer.
	small := DefaultSimConfig()
	small.Seed, small.Assignments = 7, 5000
	r1, _ := SimulateBurst(small)
	r2, _ := SimulateBurst(small)
	if fmt.Sprint(r1.Counts) != fmt.Sprint(r2.Counts) {
		t.Error("SimulateBurst is not deterministic for a seed")
	}
	for name, mod := range map[string]func(*SimConfig){
		"Strategy":        func(c *SimConfig) { c.Strategy = "nope" },
		"Nodes":           func(c *SimConfig) { c.Nodes = -1 },
		"Rate":            func(c *SimConfig) { c.Rate = 0 },
		"TokenTTL":        func(c *SimConfig) { c.TokenTTL = 0 },
		"PublishInterval": func(c *SimConfig) { c.PublishInterval = -1 },
		"Cap":             func(c *SimConfig) { c.Cap = -1 },
	} {
		c := DefaultSimConfig()
		mod(&c)
		if _, err := SimulateBurst(c); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v, want an error naming it", name, err)
		}
	}
	// Zero is a setting for these: no lag, continuous publishing, no
	// settle time.
	zero := DefaultSimConfig()
	zero.Assignments, zero.Lag, zero.PublishInterval, zero.Settle = 1000, 0, 0, 0
	if _, err := SimulateBurst(zero); err != nil {
		t.Errorf("zero lag, publish interval and settle: %v", err)
	}
}

// BenchmarkSimulateBurst reports max/mean (final and peak during the burst)
// for each strategy at several arrival rates.
func BenchmarkSimulateBurst(b *testing.B) {
	for _, rate := range []float64{5_000, 20_000} {
		for _, s := range Strategies {
			b.Run(fmt.Sprintf("rate=%.0f/%s", rate, s), func(b *testing.B) {
				var r SimResult
				for i := 0; i < b.N; i++ {
					var err error
					c := DefaultSimConfig()
					c.Strategy, c.Rate, c.Seed = s, rate, uint64(i)+1
					if r, err = SimulateBurst(c); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(r.MaxOverMean, "max/mean")
				b.ReportMetric(r.PeakMaxOverMean, "peak-max/mean")
			})
		}
	}
}
