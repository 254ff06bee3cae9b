package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// testKey is the gossip key of test clusters; otherKey is a different one.
var (
	testKey  = bytes.Repeat([]byte{0x5a}, KeySize)
	otherKey = bytes.Repeat([]byte{0xa5}, KeySize)
)

// testLogger discards serf's logs unless WSDIRECT_TEST_LOG is set: serf
// goroutines may log after a test returns, when t.Log would panic.
func testLogger() *slog.Logger {
	if os.Getenv("WSDIRECT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// loopback returns the i-th loopback address 127.0.0.(i), i in 1..254.
func loopback(i int) string { return fmt.Sprintf("127.0.0.%d", (i-1)%254+1) }

// testConfig is a LocalConfig node member "n<i>" bound to 127.0.0.<i> on a
// free port.
func testConfig(i int) *Config {
	c := LocalConfig()
	c.Name = fmt.Sprintf("n%d", i)
	c.BindAddr = loopback(i)
	c.BindPort = 0
	c.PublicAddr = loopback(i)
	c.WSPort = 8000 + i
	c.Cap = 100
	c.SecretKey = testKey
	c.Logger = testLogger()
	return c
}

func mustCreate(tb testing.TB, c *Config) *Cluster {
	tb.Helper()
	cl, err := Create(c)
	if err != nil {
		tb.Fatalf("Create(%s): %v", c.Name, err)
	}
	tb.Cleanup(func() { _ = cl.Shutdown() })
	return cl
}

// startCluster creates n members from confs (index 1..n) and joins them
// all to the first one, waiting until everyone sees everyone alive.
func startCluster(tb testing.TB, n int, mutate func(*Config)) []*Cluster {
	tb.Helper()
	members := make([]*Cluster, n)
	for i := range members {
		c := testConfig(i + 1)
		if mutate != nil {
			mutate(c)
		}
		members[i] = mustCreate(tb, c)
	}
	for _, m := range members[1:] {
		// Retried: under -race on a loaded machine a TCP push/pull can
		// time out.
		var err error
		for try := 0; try < 3; try++ {
			if _, err = m.Join([]string{members[0].GossipAddr()}); err == nil {
				break
			}
		}
		if err != nil {
			tb.Fatalf("join %s: %v", m.LocalName(), err)
		}
	}
	probe.Until(tb, 60*time.Second, fmt.Sprintf("%d members see each other alive", n), func() error {
		for _, m := range members {
			alive := 0
			for _, x := range m.Members() {
				if x.Alive {
					alive++
				}
			}
			if alive != n {
				return fmt.Errorf("%s sees %d alive", m.LocalName(), alive)
			}
		}
		return nil
	})
	return members
}

func findMember(ms []Member, name string) (Member, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}
