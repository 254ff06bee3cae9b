package node

import (
	"fmt"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// A burst of connects leaves the heap full of handshake garbage: each TLS
// handshake allocates about 40 KB that is dead once the connection is up.
// The collector frees it, but the runtime hands freed pages back to the
// OS slowly, and keeps the heap's growth allowance (GOGC) besides, so an
// idle node after a reconnect storm holds about 1.4x the memory its
// connections need (docs/benchmarks.md, "Idle connections side by side").
// Once a burst is over the node collects and returns that memory at once.

// ReleaseMemoryConfig says when a node returns freed memory to the OS.
type ReleaseMemoryConfig struct {
	// After is how long the number of connections must have held still
	// (at most MinChanges/100 opened or closed) before the node collects
	// and returns freed memory to the OS (debug.FreeOSMemory). 0 disables
	// it. It acts on the whole process: a program embedding several nodes
	// may see one release per node.
	After time.Duration

	// MinChanges is how many connections must have opened or closed since
	// the last release for another. Below it the garbage is what ordinary
	// traffic makes and the collector's allowance is meant for.
	MinChanges int
}

// DefaultReleaseMemoryConfig returns the defaults.
func DefaultReleaseMemoryConfig() ReleaseMemoryConfig {
	return ReleaseMemoryConfig{
		// A reconnect storm comes in seconds; a second without one means
		// it is over. The release itself is a collection and a scavenge:
		// about 40-90 ms for 18,000 connections (docs/benchmarks.md),
		// what 40-80 TLS handshakes cost.
		After: time.Second,
		// 1,000 connections' handshakes leave about 40 MB of garbage,
		// well above the collector's allowance on a small node.
		MinChanges: 1000,
	}
}

func (c *ReleaseMemoryConfig) validate() error {
	switch {
	case c.After < 0:
		return fmt.Errorf("node: ReleaseMemory.After must not be negative (0: never), got %s", c.After)
	case c.After > 0 && c.MinChanges <= 0:
		return fmt.Errorf("node: ReleaseMemory.MinChanges must be > 0, got %d", c.MinChanges)
	}
	return nil
}

// releaseSteps is how many samples of the connection changes one After
// spans: the burst is seen to be over between After and 1.5 After after
// its last connection.
const releaseSteps = 2

// releaser returns freed memory once a burst of connection changes has
// passed. It runs until Close.
func (n *Node) releaser() {
	rc := n.conf.ReleaseMemory
	quiet := uint64(rc.MinChanges / 100)
	t := time.NewTicker(rc.After / releaseSteps)
	defer t.Stop()
	released := n.changes.Load()
	var ago [releaseSteps]uint64 // the samples of the last After
	for i := range ago {
		ago[i] = released
	}
	for k := 0; ; k++ {
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		now := n.changes.Load()
		then := ago[k%releaseSteps] // releaseSteps ticks ago
		ago[k%releaseSteps] = now
		if now-released >= uint64(rc.MinChanges) && now-then <= quiet {
			n.releaseMemory()
			released = now
		}
	}
}

// releaseMemory collects and returns every freed page to the OS.
func (n *Node) releaseMemory() {
	sample := []rtmetrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	rtmetrics.Read(sample)
	before := sample[0].Value.Uint64()
	start := time.Now()
	debug.FreeOSMemory()
	took := time.Since(start)
	rtmetrics.Read(sample)
	n.metrics.memoryReleases.Inc()
	n.log.Debug("returned freed memory to the OS after a burst of connections",
		"returned_bytes", int64(sample[0].Value.Uint64())-int64(before), "took", took, "conns", n.active.Load())
}
