package node

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// View is the cluster as the node sees it. A *cluster.Cluster satisfies it.
type View interface {
	// Nodes returns the alive node members with their latest gossiped
	// counts, this node included.
	Nodes() []cluster.Member
}

// RebalanceConfig tunes rebalancing (docs/design.md section 15). Start from
// DefaultRebalanceConfig. The numbers are checked when Enabled is set.
type RebalanceConfig struct {
	// Enabled lets this node move clients to nodes with fewer. A node that
	// is draining never moves any, enabled or not.
	Enabled bool

	// MaxRate bounds the clients moved per second across the whole
	// cluster, and so the auth requests a rebalance causes: the m nodes
	// that move clients at the same time close, together, at most MaxRate
	// in any one-second window (see planRebalance). Each moved client asks
	// auth once, within its first backoff window (100 ms with the
	// project's clients), so auth sees at most MaxRate × 1.1 in any
	// second. Give every node the same value, well above the number of
	// nodes. Must be >= 1.
	MaxRate float64

	// Tolerance is how far above its share of the cluster's clients a
	// node may be before it moves any: it starts when it holds more than
	// (1 + Tolerance) times its share, and then moves down to its share.
	// The gap between the two is the hysteresis that keeps nodes from
	// moving clients back and forth over small differences. Its share is
	// the cluster's total in proportion to its cap, as auth fills nodes.
	// Must be in [0, 1).
	Tolerance float64

	// MinMove is the fewest excess clients worth a round: below it, a
	// small imbalance costs less than the reconnects. Must be >= 1.
	MinMove int

	// Interval is how often the node looks at the cluster view. Must be
	// > 0.
	Interval time.Duration

	// Settle is how long the cluster's total must have held steady before
	// a round starts, and how long the node waits after a round before it
	// looks again: the moved clients must reconnect and their new nodes'
	// counts be gossiped before the view says anything about the result.
	// Must be > 0.
	Settle time.Duration

	// Exempt is how long a client that arrived here because a rebalance
	// moved it (its token is marked token.Claims.Rebalanced) is not moved
	// again by this node: a client moves at most once per rebalance. Must
	// be > 0.
	Exempt time.Duration
}

// DefaultRebalanceConfig returns rebalancing switched on with production
// defaults.
func DefaultRebalanceConfig() RebalanceConfig {
	return RebalanceConfig{
		// A node that joins an even cluster should take its share of the
		// clients without an operator's help.
		Enabled: true,
		// 100 moves a second: a quarter of 12,000 clients (3 nodes to 4)
		// in about 30 s, a tenth of 100,000 in about 90 s. Each moved
		// client logs in again; with the users-file backend at bcrypt cost
		// 10 and a cold credential cache (users who logged in more than a
		// minute ago) that is one bcrypt, about 0.1 s of a core, so 100/s
		// wants several cores of auth to spare. Lower it for a small auth
		// fleet (docs/design.md section 15).
		MaxRate: 100,
		// The balance the cluster is held to (max/mean 1.10); two random
		// choices keep a steady cluster within a few percent, so noise
		// does not start rounds.
		Tolerance: 0.10,
		// Twenty reconnects are not worth it for a node a few clients over.
		MinMove: 20,
		// Counts are gossiped every 250 ms at most; a second is plenty.
		Interval: time.Second,
		// Moved clients reconnect within about a second (backoff window,
		// auth, upgrade) and counts reach everyone within about a second
		// (p99 0.4 s); 5 s leaves room for a loaded host, and is long
		// enough to tell a steady cluster from one still filling up.
		Settle: 5 * time.Second,
		// Far longer than a round takes at MaxRate, so a client moves at
		// most once per rebalance; short enough that the next scale-out,
		// minutes later, may move it again.
		Exempt: 10 * time.Minute,
	}
}

// validate reports the first problem with c when it is enabled.
func (c *RebalanceConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	switch {
	case !(c.MaxRate >= 1) || math.IsInf(c.MaxRate, 1):
		return fmt.Errorf("node: Rebalance.MaxRate must be a number >= 1, got %g", c.MaxRate)
	case !(c.Tolerance >= 0 && c.Tolerance < 1):
		return fmt.Errorf("node: Rebalance.Tolerance must be in [0, 1), got %g", c.Tolerance)
	case c.MinMove < 1:
		return fmt.Errorf("node: Rebalance.MinMove must be >= 1, got %d", c.MinMove)
	case c.Interval <= 0:
		return fmt.Errorf("node: Rebalance.Interval must be > 0, got %s", c.Interval)
	case c.Settle <= 0:
		return fmt.Errorf("node: Rebalance.Settle must be > 0, got %s", c.Settle)
	case c.Exempt <= 0:
		return fmt.Errorf("node: Rebalance.Exempt must be > 0, got %s", c.Exempt)
	}
	return nil
}

// rebalancePlan is what one node decides from one view of the cluster.
type rebalancePlan struct {
	// Total is the cluster's clients; Share is this node's part of them.
	Total, Share int
	// Move is how many clients to move now, 0 for none.
	Move int
	// Movers is how many nodes are over their share by more than the
	// tolerance, this one included.
	Movers int
	// Rate is this node's close rate: max(MaxRate − Movers, MaxRate/2) /
	// Movers.
	Rate float64
	// Why says why nothing is moved, when Move is 0.
	Why string
}

// planRebalance decides, from view and this node's exact count, whether
// node self moves clients now, how many and how fast. Every node runs it on
// its own view, and views differ only by the gossip lag, so the nodes agree
// without talking to each other:
//
//   - A node's share is the cluster's total in proportion to its cap. The
//     view's counts lag by up to about a second, which matters only while
//     clients are in flight, so a round's size is fixed when it starts
//     (from a view in which nothing is moving) and the next look comes
//     only after Settle.
//   - A node over (1 + Tolerance) times its share by at least MinMove
//     moves the excess over its share: together they move the least that
//     evens the cluster out, about 1/(n+1) of all clients when an (n+1)th
//     node joins n even ones.
//   - The movers share MaxRate equally. Each computes the same count of
//     movers from (nearly) the same view. A mover paced at r with no burst
//     closes at most r×W + 1 clients in any window W, so each takes
//     (MaxRate − m)/m for m movers: together at most MaxRate in any one
//     second, not only on average. (When MaxRate is not above 2m, each
//     takes MaxRate/2m, and the bound holds over windows of two seconds.)
//   - Nobody moves while any node is draining: its clients are coming
//     back through auth already, the shares change when it leaves, and
//     the reconnects of a drain should not meet those of a rebalance.
//   - Nobody moves until every other node's count has been heard: a
//     member just joined is listed before its first count arrives, and a
//     zero read for an unknown count would inflate everybody's excess.
//
// Total is filled in whatever the answer; the loop also needs the total to
// have held steady before it acts on a plan, and passes the lowest own count
// of the last Settle as selfConns (see looks).
func planRebalance(self string, selfConns int, view []cluster.Member, c *RebalanceConfig) rebalancePlan {
	var p rebalancePlan
	found := false
	capSum := 0
	for _, m := range view {
		if m.Name == self {
			found = true
			m.Conns = selfConns
		}
		p.Total += m.Conns
		capSum += max(m.Cap, 0)
		switch {
		case p.Why != "":
		case m.Draining:
			p.Why = "node " + m.Name + " is draining"
		case m.NotReady:
			// Auth sends it nobody yet (no certificate, or tokens not yet
			// accepted): a client moved now would land on the others.
			p.Why = "node " + m.Name + " is not ready"
		case m.Cap <= 0:
			p.Why = "node " + m.Name + " has no cap"
		case m.Name != self && m.UpdatedAt.IsZero():
			p.Why = "the count of node " + m.Name + " has not been heard yet"
		}
	}
	switch {
	case p.Why != "":
		return p
	case !found:
		p.Why = "this node is not in the view yet"
		return p
	}
	excess := 0
	for _, m := range view {
		conns := m.Conns
		if m.Name == self {
			conns = selfConns
		}
		share := float64(p.Total) * float64(m.Cap) / float64(capSum)
		over := int(math.Floor(float64(conns) - share))
		if float64(conns) > share*(1+c.Tolerance) && over >= c.MinMove {
			p.Movers++
		}
		if m.Name == self {
			p.Share = int(math.Ceil(share))
			excess = over
			if !(float64(conns) > share*(1+c.Tolerance)) || over < c.MinMove {
				p.Why = fmt.Sprintf("within tolerance: %d clients, share %.0f", conns, share)
			}
		}
	}
	if p.Why != "" {
		return p
	}
	p.Move = excess
	p.Rate = math.Max(c.MaxRate-float64(p.Movers), c.MaxRate/2) / float64(p.Movers)
	return p
}

// looks remembers, for the last Settle, the cluster's total, its members
// and this node's own count at each look.
//
// Why: a node knows its own count exactly but the others' only as
// gossiped, up to about a second late. While clients pour in (a start, a
// failover), every node's own count runs ahead of the others' and each
// believes itself the busiest: all of them would move clients that auth is
// spreading evenly anyway, and the first in-process tests showed exactly
// that. So a plan uses the lowest own count of the last Settle (the others'
// views of this node are no older than that), and a round starts only when
// the total has moved by no more than half the tolerance (or MinMove) over
// the last Settle: a cluster still filling up is evened out by auth's
// picking, for free. A node joining, or leaving gracefully, does not change
// the total.
//
// The members must not have changed over the last Settle either: a node
// that joined, left or was declared failed changes every share, and on a
// starved host failure detection flaps (a member declared failed drops out
// of the view with its count, and comes back); the in-process tests under
// -race on a loaded machine moved clients on such views. A new node delays
// the first round by Settle.
type looks struct {
	at      []time.Time
	total   []int
	own     []int
	members []string
}

// add records a look (members names the nodes in the view) and reports
// whether the total held steady and the members stayed the same for the
// whole of the last Settle (looks at least that long included), and the
// lowest own count over that time.
func (l *looks) add(now time.Time, total, own int, members string, c *RebalanceConfig) (steady bool, ownLow int) {
	l.at = append(l.at, now)
	l.total = append(l.total, total)
	l.own = append(l.own, own)
	l.members = append(l.members, members)
	// Keep the newest look older than Settle and everything after it.
	cut := 0
	for i := range l.at {
		if now.Sub(l.at[i]) >= c.Settle {
			cut = i
		}
	}
	l.at, l.total, l.own, l.members = l.at[cut:], l.total[cut:], l.own[cut:], l.members[cut:]
	lo, hi, ownLow := total, total, own
	same := true
	for i := range l.total {
		lo, hi, ownLow = min(lo, l.total[i]), max(hi, l.total[i]), min(ownLow, l.own[i])
		same = same && l.members[i] == members
	}
	steady = same && now.Sub(l.at[0]) >= c.Settle &&
		float64(hi-lo) <= max(float64(c.MinMove), c.Tolerance/2*float64(total))
	return steady, ownLow
}

// memberNames is the view's node names, in its (name) order, as one
// string; a node that is not ready is marked, so becoming ready counts as a
// change of members (it changes every share).
func memberNames(view []cluster.Member) string {
	var b strings.Builder
	for _, m := range view {
		b.WriteString(m.Name)
		if m.NotReady {
			b.WriteByte('?')
		}
		b.WriteByte(0)
	}
	return b.String()
}

// rebalancer is the loop that looks at the view every Interval and runs a
// round when the plan says so and the cluster is steady. It ends when the
// node closes or drains.
func (n *Node) rebalancer(ctx context.Context) {
	c := &n.conf.Rebalance
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	lastWhy := ""
	var seen looks
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.draining.Load() || n.closed.Load() {
			return
		}
		view, own := n.conf.View.Nodes(), n.Conns()
		total := planRebalance(n.conf.Name, own, view, c).Total
		steady, ownLow := seen.add(time.Now(), total, own, memberNames(view), c)
		p := planRebalance(n.conf.Name, ownLow, view, c)
		if p.Move > 0 && !steady {
			p.Move, p.Why = 0, fmt.Sprintf("the cluster is not steady (%d clients, %d nodes now)", total, len(view))
		}
		if p.Move == 0 {
			if p.Why != lastWhy {
				lastWhy = p.Why
				n.log.Debug("rebalance: nothing to move", "why", p.Why)
			}
			continue
		}
		lastWhy = ""
		n.rebalanceRound(ctx, p)
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.Settle):
		}
	}
}

// rebalanceRound closes up to p.Move clients with wire.CloseRebalance at
// p.Rate, and stops early when the node drains or closes, another node
// starts draining, the node is down to its share (clients left on their
// own), or no client may be moved.
func (n *Node) rebalanceRound(ctx context.Context, p rebalancePlan) {
	c := &n.conf.Rebalance
	start := time.Now()
	n.metrics.rebalanceRounds.Inc()
	n.log.Info("rebalance: moving clients to nodes with fewer", "clients", n.Conns(), "share", p.Share,
		"move", p.Move, "cluster_clients", p.Total, "movers", p.Movers, "rate", p.Rate)
	// Never two closes closer than 1/rate apart, measured from the moment
	// each close was made (a close delayed by the scheduler pushes the next
	// one back rather than letting two bunch), so the movers' rates add up
	// to at most MaxRate in every window, not only on average. The first
	// close comes 1/rate after the start.
	gap := time.Duration(float64(time.Second) / p.Rate)
	next := start.Add(gap)
	timer := time.NewTimer(gap)
	defer timer.Stop()
	moved, why := 0, "done"
	lastLook := start
	defer func() {
		n.metrics.rebalanceLeft.Set(0)
		n.log.Info("rebalance: round over", "moved", moved, "of", p.Move, "why", why,
			"took", time.Since(start).Round(time.Millisecond), "clients", n.Conns())
	}()
	for moved < p.Move {
		n.metrics.rebalanceLeft.Set(float64(p.Move - moved))
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			why = "stopped"
			return
		case <-timer.C:
		}
		now := time.Now()
		switch {
		case n.draining.Load() || n.closed.Load():
			why = "this node is draining"
			return
		case n.Conns() <= p.Share:
			why = "down to its share"
			return
		}
		if now.Sub(lastLook) >= c.Interval {
			lastLook = now
			for _, m := range n.conf.View.Nodes() {
				if m.Draining {
					why = "node " + m.Name + " started draining"
					return
				}
			}
		}
		cn := n.movable(now)
		if cn == nil {
			why = "no client may move"
			return
		}
		n.metrics.rebalanceMoved.Inc()
		moved++
		next = time.Now().Add(gap)
		cn.closeWith(wire.CloseRebalance, closeText(wire.CloseRebalance))
	}
}

// movable returns a connection the rebalance may move: not closing, and not
// moved here by a rebalance less than Exempt ago. Go's map order makes the
// choice arbitrary; the shard to start from rotates so that every shard
// gives up its share.
func (n *Node) movable(now time.Time) *conn {
	exemptSince := now.Add(-n.conf.Rebalance.Exempt).UnixNano()
	start := n.rbShard.Add(1)
	for i := uint32(0); i < connShards; i++ {
		s := &n.shards[(start+i)%connShards]
		s.mu.Lock()
		for c := range s.m {
			if c.closing.Load() || c.movedIn > exemptSince {
				continue
			}
			s.mu.Unlock()
			return c
		}
		s.mu.Unlock()
	}
	return nil
}
