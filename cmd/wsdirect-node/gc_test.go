package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 25},                 // no figure yet: the base
		{1 << 20, 400},          // 4 MiB of headroom over 1 MiB
		{6_815_744, 65},         // 61.5 %, rounded up to a step of 5
		{16 << 20, 25},          // exactly 25 %
		{100 << 20, 25},         // more than the floor: the base
		{1, 419_430_400},        // a heap of one byte still gets 4 MiB
		{gcMinHeadroom * 2, 50}, // half the floor again
	} {
		if got := gcPercentFor(c.live, 25); got != c.want {
			t.Errorf("gcPercentFor(%d, 25) = %d, want %d", c.live, got, c.want)
		}
	}
}

// TestTuneGC: in this small test process the live heap is far under 16
// MiB, so tuneGC raises GOGC above its base, and stops with its context.
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(25)
	defer debug.SetGCPercent(prev)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tuneGC(ctx, 25, 5*time.Millisecond) }()
	sample := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		metrics.Read(sample)
		if sample[0].Value.Uint64() > 25 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after 10s", sample[0].Value.Uint64())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("tuneGC did not return after its context ended")
	}
}
