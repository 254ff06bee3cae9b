package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcPercent is the node's GOGC unless the environment sets one. A node's
// live heap is mostly its idle connections' state, and the collector lets
// the heap grow by GOGC percent of what is live before it runs again: at
// Go's default of 100 a node's RSS carries about as much garbage as
// connection state, and the garbage of a burst of handshakes is left
// interleaved with the connections' state in pages that cannot be
// returned. At 25 an idle wss connection measured 5.9 KB after a burst
// against 6.2 KB at 50 and 6.8 KB at 100; the price is collections more
// often, which cost CPU in proportion to what the node allocates
// (connects and messages), not to the connections it holds
// (docs/benchmarks.md, "Idle connections side by side").
const gcPercent = 25

// gcMinHeadroom is the least the heap may grow between collections,
// whatever gcPercent says: the runtime's own floor at its default GOGC.
// At 25 % of a small node's live heap (2,700 connections: 6-7 MB) the
// collector ran about once a second under message load, each cycle mostly
// fixed cost. From 16 MiB live, 25 % is more than this and the floor
// changes nothing: a node holding 18,000 idle connections is past it.
const gcMinHeadroom = 4 << 20

// gcPercentFor returns the GOGC that lets the heap grow by base percent of
// live bytes, and by at least gcMinHeadroom.
func gcPercentFor(live uint64, base int) int {
	if live == 0 {
		return base
	}
	p := int((gcMinHeadroom*100 + live - 1) / live)
	// In steps of 5, so that a live heap moving by a few bytes does not
	// move the target each time.
	p = (p + 4) / 5 * 5
	return max(p, base)
}

// tuneGC keeps GOGC at gcPercentFor the live heap, checked every interval,
// until ctx ends.
func tuneGC(ctx context.Context, base int, every time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	cur := base
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // not this runtime's metric: keep base
		}
		if p := gcPercentFor(sample[0].Value.Uint64(), base); p != cur {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}
