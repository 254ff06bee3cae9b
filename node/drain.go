package node

import (
	"context"
	"fmt"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// Drain takes the node out of assignment and sends its clients elsewhere:
// it marks the node draining (new upgrades get 503, /readyz 503) and
// publishes that, then closes clients DrainBatch at a time, DrainInterval
// apart, with wire.CloseDraining. It returns nil once no client is left, or
// an error when DrainDeadline (or ctx) ends first, after closing the rest at
// once. Calling it again, or concurrently, is safe.
func (n *Node) Drain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.conf.DrainDeadline)
	defer cancel()
	start := time.Now()
	if n.draining.CompareAndSwap(false, true) {
		// A draining node never takes part in a rebalance.
		n.stopRebalance()
		n.metrics.drains.Inc()
		n.log.Info("draining", "connections", n.Conns())
		if n.pub != nil {
			// Before any client is closed, so auth stops sending them back.
			if err := n.pub.SetDraining(true); err != nil {
				n.log.Warn("publishing draining state failed", "err", err)
			}
		}
	}
	defer n.drainOnce.Do(func() { close(n.drained) })

	for {
		if n.slots.Load() == 0 {
			n.log.Info("drained", "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
		batch := n.snapshot(n.conf.DrainBatch)
		for _, c := range batch {
			c.closeWith(wire.CloseDraining, closeText(wire.CloseDraining))
		}
		wait := n.conf.DrainInterval
		if len(batch) == 0 {
			// Everyone has been told; wait for the close handshakes.
			wait = pollInterval
		}
		select {
		case <-ctx.Done():
			left := n.forceClose(wire.CloseDraining)
			return fmt.Errorf("node: drain stopped after %s with %d connections left: %w",
				time.Since(start).Round(time.Millisecond), left, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// Close closes every client with wire.CloseShutdown, refuses new upgrades
// and stops the pinger. It waits up to WriteWait+CloseGrace for the clients
// to go.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		n.stopRebalance()
		if n.freshTimer != nil {
			n.freshTimer.Stop()
		}
		close(n.done)
		for {
			batch := n.snapshot(1 << 30)
			if len(batch) == 0 {
				break
			}
			for _, c := range batch {
				c.closeWith(wire.CloseShutdown, closeText(wire.CloseShutdown))
			}
		}
		deadline := time.Now().Add(n.conf.WriteWait + n.conf.CloseGrace)
		for n.active.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(pollInterval)
		}
		if left := n.active.Load(); left > 0 {
			err = fmt.Errorf("node: %d connections still open after close", left)
		}
	})
	return err
}

// forceClose sends code to every remaining client and drops its socket
// without waiting for the answer. It returns how many were open.
func (n *Node) forceClose(code int) int {
	left := n.Conns()
	for i := range n.shards {
		for _, c := range n.shards[i].list() {
			c.closeWith(code, closeText(code))
			c.shutdown()
		}
	}
	return left
}
