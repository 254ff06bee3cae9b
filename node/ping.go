package node

import (
	"time"

	"github.com/gorilla/websocket"
)

// pinger is the one goroutine that keeps every connection alive. Every
// connection is pinged once per PingInterval, but not all at once: the
// pinger pings one slice of the shards every PingInterval/slices, so that
// a node of 100,000 connections does not write 100,000 pings, and take
// 100,000 pongs, in the same instant. Pinging everything at once held
// every message on the node, and on its clients, behind the burst: under
// 8,000 msg/s over wss it was one stall of 300-400 ms every 30 s, and the
// whole of the message p99. Each shard is pinged on a goroutine of its
// own, so one slow peer delays only its shard, by at most WriteWait.
//
// More often, every PongWait/reapDivisor, it drops the connections whose
// peer has sent neither a message nor a pong for PongWait: with no read
// waiting on an idle connection, no read deadline can do it.
func (n *Node) pinger() {
	slices := pingSlices(n.conf.PingInterval)
	step := n.conf.PingInterval / time.Duration(slices)
	ping := time.NewTicker(step)
	defer ping.Stop()
	reap := time.NewTicker(n.conf.PongWait / reapDivisor)
	defer reap.Stop()
	start, pinged := time.Now(), 0 // slices pinged since start
	for {
		select {
		case <-n.done:
			return
		case <-reap.C:
			n.reapDead()
			// The replay cache sweeps as tokens come; after a burst and
			// then none, this is what lets it go.
			n.verifier.Sweep()
			continue
		case <-ping.C:
		}
		// Count slices by the clock, not by ticks: a ticker drops the ticks
		// a busy process misses, and a dropped tick would skip a slice for
		// a whole round. Never catch up more than one round.
		due := int(time.Since(start) / step)
		if due-pinged > slices {
			pinged = due - slices
		}
		for ; pinged < due; pinged++ {
			for i := pinged % slices; i < connShards; i += slices {
				s := &n.shards[i]
				if !s.pinging.CompareAndSwap(false, true) {
					continue // still pinging it from a round ago
				}
				go func() {
					defer s.pinging.Store(false)
					n.pingShard(s)
				}()
			}
		}
	}
}

// minPingStep is the shortest time between two slices of the pinger: with
// the 30 s default every shard is a slice of its own (one every 0.94 s);
// only a short PingInterval, as in tests, puts several shards in a slice.
const minPingStep = 10 * time.Millisecond

// pingSlices returns how many slices the pinger splits the shards into.
func pingSlices(interval time.Duration) int {
	return max(1, min(connShards, int(interval/minPingStep)))
}

// reapDivisor sets how late past PongWait a dead peer may be dropped: at
// most PongWait/8 (about 9 s by default), for a walk of the connection set
// that costs microseconds per thousand connections.
const reapDivisor = 8

// reapDead drops every connection silent for longer than PongWait.
func (n *Node) reapDead() {
	cutoff := time.Now().Add(-n.conf.PongWait).UnixNano()
	var dead []*conn
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.Lock()
		for c := range s.m {
			if c.lastSeen.Load() < cutoff {
				dead = append(dead, c)
			}
		}
		s.mu.Unlock()
	}
	for _, c := range dead {
		n.log.Debug("dropping a silent peer", "user", c.user)
		c.shutdown()
	}
}

func (n *Node) pingShard(s *connShard) {
	for _, c := range s.list() {
		if c.closing.Load() {
			continue
		}
		if err := c.leg.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(n.conf.WriteWait)); err != nil {
			// A peer we cannot even write a ping to is gone; the read side
			// notices the closed socket and cleans up.
			c.shutdown()
		}
	}
}
