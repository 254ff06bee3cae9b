package node

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// TestPingSlicesCoverEveryShard: whatever the interval, one round of
// slices pings every shard exactly once, and no slice is empty.
func TestPingSlicesCoverEveryShard(t *testing.T) {
	for _, iv := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, time.Second, 30 * time.Second} {
		slices := pingSlices(iv)
		if slices < 1 || slices > connShards {
			t.Fatalf("pingSlices(%s) = %d, want 1..%d", iv, slices, connShards)
		}
		if step := iv / time.Duration(slices); slices > 1 && step < minPingStep {
			t.Fatalf("pingSlices(%s) = %d: a slice every %s, under minPingStep", iv, slices, step)
		}
		seen := make([]int, connShards)
		for k := 0; k < slices; k++ {
			n := 0
			for i := k; i < connShards; i += slices {
				seen[i]++
				n++
			}
			if n == 0 {
				t.Fatalf("interval %s: slice %d pings no shard", iv, k)
			}
		}
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("interval %s: shard %d pinged %d times a round, want 1", iv, i, n)
			}
		}
	}
	if got := pingSlices(30 * time.Second); got != connShards {
		t.Fatalf("pingSlices(30s) = %d, want a slice per shard (%d)", got, connShards)
	}
}

// TestPingsSpreadOverInterval: every connection is pinged once per
// PingInterval, and not all in the same instant. The first pings of 64
// connections, in 32 shards, reach their clients over about one interval;
// pinging them all at once, as the node once did, put them within a few
// milliseconds. The bound asked for is a quarter of the interval, so only
// a stall of three quarters of it (3 s) could make the test fail.
func TestPingsSpreadOverInterval(t *testing.T) {
	const interval = 4 * time.Second
	const conns = 2 * connShards
	f := newFixture(t, func(c *Config) {
		c.PingInterval = interval
		c.PongWait = 3 * interval
	})
	var mu sync.Mutex
	first := map[int]time.Time{}
	count := map[int]int{}
	for i := 0; i < conns; i++ {
		ws := f.mustDial(fmt.Sprintf("u%d", i))
		ws.SetPingHandler(func(data string) error {
			mu.Lock()
			if _, ok := first[i]; !ok {
				first[i] = time.Now()
			}
			count[i]++
			mu.Unlock()
			return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	// Every connection is pinged within about a round, and the second
	// round reaches every one again.
	probe.Until(t, 4*interval, "every connection pinged twice", func() error {
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < conns; i++ {
			if count[i] < 2 {
				return fmt.Errorf("connection %d pinged %d times", i, count[i])
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	lo, hi := first[0], first[0]
	for _, at := range first {
		if at.Before(lo) {
			lo = at
		}
		if at.After(hi) {
			hi = at
		}
	}
	if span := hi.Sub(lo); span < interval/4 {
		t.Fatalf("the first pings of %d connections came within %s of each other, want them spread over about %s", conns, span, interval)
	}
	t.Logf("first pings of %d connections spread over %s (interval %s)", conns, hi.Sub(lo), interval)
}
