package authsvc

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
)

// NodePicker chooses the node for one assignment. Pick is called with the
// current cluster view and records the assignment if it keeps state.
// Implementations must be safe for concurrent use.
type NodePicker interface {
	Pick(nodes []cluster.Member, now time.Time) (cluster.Member, bool)
	// Pending is how many assignments to name this picker still counts on
	// top of the node's gossiped connection count.
	Pending(name string, now time.Time) int
}

// DefaultPendingSettle is how long after an assignment a gossiped count is
// assumed to include it: the client's connect time plus count propagation
// (docs/design.md section 4 aims at a count freshness p99 of 1 s).
const DefaultPendingSettle = time.Second

// Candidate reports whether m may take a new assignment given pending
// assignments on top of its gossiped count: an alive, ready, non-draining
// node with a dialable address and room below its cap.
func Candidate(m cluster.Member, pending int) bool {
	return m.Alive && !m.Draining && !m.NotReady && (m.Role == cluster.RoleNode || m.Role == "") &&
		m.Addr != "" && m.Port > 0 && m.Cap > 0 && m.Conns+pending < m.Cap
}

// Picker is weighted power-of-two-choices with pending accounting
// (docs/design.md section 5). Of the candidate nodes it draws two distinct ones
// at random and takes the one with the lower (conns + pending) / cap. Drawing
// at random is what keeps several auth instances working from the same
// stale counts from all piling onto the same "least loaded" node; comparing
// two is what still steers load away from full nodes.
//
// Pending accounting. The gossiped count lags the truth, so the picker
// remembers each assignment it made (per node, in time order) and adds the
// ones the count cannot include yet. An assignment stops counting when
//
//  1. its token expires (assignedAt + pendingTTL): the client either
//     connected, and is in the node's count by then, or never will; or
//  2. the node's count was heard (Member.UpdatedAt, local clock) more than
//     settle after the assignment: the count heard at time H was published at
//     about H - propagation, and a client connects within moments of its
//     assignment, so an assignment older than H - settle is already inside
//     that count and counting it again would make the node look busier than
//     it is.
//
// Rule 2 is what keeps the picker from double counting once gossip has
// caught up; if the view never reports UpdatedAt (zero), rule 1 alone
// applies. A settle larger than the real lag errs on the safe side (a
// recently used node looks slightly busier for a moment); a smaller one
// undercounts briefly.
//
// Only this instance's assignments are known; the other auth instances'
// appear through gossip only after the lag. They see the same stale counts
// and run the same algorithm, so they fill the same gaps: each instance
// correcting a gap alone makes n instances overshoot it n-fold, and the
// overshoot oscillates from one gossip round to the next. SetPeers(n)
// weighs the own pending assignments by n as an estimate of everybody's,
// which the burst simulation (internal/bench/balance: StrategyP2C against
// StrategyP2COwnPending) shows takes max/mean after a 100k burst from
// 1.004 (20k/s) – 1.024 (5k/s) down to about 1.0003 at either rate.
type Picker struct {
	mu     sync.Mutex
	rnd    *rand.Rand
	ttl    time.Duration
	settle time.Duration
	peers  float64
	nodes  map[string]*pendingQueue
	// cands is scratch space reused across picks (guarded by mu).
	cands     []candidate
	lastSweep time.Time
}

// pendingQueue holds one node's outstanding assignment times, oldest first.
type pendingQueue struct {
	at    []time.Time
	head  int
	heard time.Time // last Member.UpdatedAt seen for the node
}

type candidate struct {
	m    cluster.Member
	q    *pendingQueue
	load float64
}

// NewPicker returns a power-of-two-choices picker. rnd seeds the random
// draws (nil: a random seed); pendingTTL is how long an assignment can count
// as pending at most, normally the token TTL (0 or less: 30 s). The settle
// time is DefaultPendingSettle; change it with SetSettle before use.
func NewPicker(rnd *rand.Rand, pendingTTL time.Duration) *Picker {
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if pendingTTL <= 0 {
		pendingTTL = 30 * time.Second
	}
	return &Picker{
		rnd:    rnd,
		ttl:    pendingTTL,
		settle: DefaultPendingSettle,
		peers:  1,
		nodes:  make(map[string]*pendingQueue),
	}
}

// SetSettle sets how long after an assignment a freshly heard count is
// taken to include it (see the type comment). 0 retires pending assignments
// as soon as any newer count arrives.
func (p *Picker) SetSettle(d time.Duration) {
	p.mu.Lock()
	p.settle = d
	p.mu.Unlock()
}

// SetPeers tells the picker how many auth instances (itself included)
// share the traffic, so that it can estimate the assignments the others made
// from the same stale view: it weighs its own pending assignments by n. All
// instances see the same stale counts and run the same algorithm, so the
// others tend to fill the same gaps; without this each instance fills a gap
// on its own and together they overshoot it n-fold. n < 1 is taken as 1.
func (p *Picker) SetPeers(n int) {
	p.mu.Lock()
	p.peers = float64(max(n, 1))
	p.mu.Unlock()
}

// Pick implements NodePicker and records the assignment as pending.
func (p *Picker) Pick(nodes []cluster.Member, now time.Time) (cluster.Member, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cands := p.candidates(nodes, now)
	var c candidate
	switch len(cands) {
	case 0:
		return cluster.Member{}, false
	case 1:
		c = cands[0]
	default:
		i := p.rnd.IntN(len(cands))
		j := p.rnd.IntN(len(cands) - 1)
		if j >= i {
			j++ // two distinct candidates
		}
		c = cands[i]
		if cands[j].load < c.load {
			c = cands[j]
		}
	}
	return p.record(c, now), true
}

// PickLeastLoaded places a client that a node moved to rebalance the
// cluster (docs/design.md section 15): it takes the candidate with the
// lowest (conns + peers × pending) / cap, ties broken at random, and records
// the assignment as pending like Pick.
//
// Why not two random choices here: a moved client left a node above the
// cluster's mean, and two random choices would send about one in three of
// them back to another busy node, which would then be over its share and
// move a client of its own: more moves than needed. Least-loaded herds onto
// one node only when many requests arrive within one gossip lag; moved
// clients arrive at a rate the nodes pace (a few hundred a second across
// the cluster), and pending accounting counts each of them on the chosen
// node at once, so the least loaded node changes as soon as it has caught
// up.
func (p *Picker) PickLeastLoaded(nodes []cluster.Member, now time.Time) (cluster.Member, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cands := p.candidates(nodes, now)
	if len(cands) == 0 {
		return cluster.Member{}, false
	}
	best, ties := 0, 1
	for i := 1; i < len(cands); i++ {
		switch {
		case cands[i].load < cands[best].load:
			best, ties = i, 1
		case cands[i].load == cands[best].load:
			// Reservoir sampling: each of the tied candidates is kept
			// with equal probability.
			ties++
			if p.rnd.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return p.record(cands[best], now), true
}

// candidates lists the nodes that may take an assignment with their load,
// in p.cands (reused across picks). p.mu must be held.
func (p *Picker) candidates(nodes []cluster.Member, now time.Time) []candidate {
	p.sweep(now)
	cands := p.cands[:0]
	for _, m := range nodes {
		q := p.nodes[m.Name]
		pending := 0
		if q != nil {
			if m.UpdatedAt.After(q.heard) {
				q.heard = m.UpdatedAt
			}
			pending = q.prune(now, p.ttl, p.settle)
		}
		if !Candidate(m, pending) {
			continue
		}
		cands = append(cands, candidate{m: m, q: q, load: (float64(m.Conns) + p.peers*float64(pending)) / float64(m.Cap)})
	}
	p.cands = cands[:0]
	return cands
}

// record remembers an assignment to c as pending. p.mu must be held.
func (p *Picker) record(c candidate, now time.Time) cluster.Member {
	if c.q == nil {
		c.q = &pendingQueue{heard: c.m.UpdatedAt}
		p.nodes[c.m.Name] = c.q
	}
	c.q.at = append(c.q.at, now)
	return c.m
}

// Pending implements NodePicker.
func (p *Picker) Pending(name string, now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.nodes[name]
	if q == nil {
		return 0
	}
	return q.prune(now, p.ttl, p.settle)
}

// sweep drops the queues of nodes whose assignments have all expired, so
// nodes that left the cluster do not stay in memory. It runs at most once
// per pending TTL.
func (p *Picker) sweep(now time.Time) {
	if now.Sub(p.lastSweep) < p.ttl {
		return
	}
	p.lastSweep = now
	for name, q := range p.nodes {
		if q.prune(now, p.ttl, p.settle) == 0 {
			delete(p.nodes, name)
		}
	}
}

// prune retires assignments per the rules on Picker and returns how many
// still count. Assignment times are appended in order, so both rules retire
// a prefix of the queue.
func (q *pendingQueue) prune(now time.Time, ttl, settle time.Duration) int {
	expired := now.Add(-ttl)         // assigned at or before this: token expired
	included := q.heard.Add(-settle) // assigned before this: inside the count
	for q.head < len(q.at) {
		t := q.at[q.head]
		if !t.After(expired) || (!q.heard.IsZero() && t.Before(included)) {
			q.head++
			continue
		}
		break
	}
	n := len(q.at) - q.head
	switch {
	case n == 0:
		q.at, q.head = q.at[:0], 0
	case q.head > 64 && q.head > n:
		// Compact so the backing array does not grow without bound.
		q.at = append(q.at[:0], q.at[q.head:]...)
		q.head = 0
	}
	return n
}

// LeastLoaded is the naive baseline: always the candidate with the lowest
// conns / cap from the gossiped counts, no pending accounting, ties to the
// first in view order. With stale counts it sends every request in a gossip
// interval to the same node (Mitzenmacher 2000); it exists to show that in
// tests and benchmarks.
type LeastLoaded struct{}

// Pick implements NodePicker.
func (LeastLoaded) Pick(nodes []cluster.Member, _ time.Time) (cluster.Member, bool) {
	best, found, bestLoad := cluster.Member{}, false, 0.0
	for _, m := range nodes {
		if !Candidate(m, 0) {
			continue
		}
		load := float64(m.Conns) / float64(m.Cap)
		if !found || load < bestLoad {
			best, found, bestLoad = m, true, load
		}
	}
	return best, found
}

// Pending implements NodePicker; the baseline keeps none.
func (LeastLoaded) Pending(string, time.Time) int { return 0 }

// RoundRobin cycles through the candidates in view order, ignoring load. It
// is a reference point for the balance simulation.
type RoundRobin struct {
	mu   sync.Mutex
	next uint64
}

// NewRoundRobin returns a RoundRobin that starts at candidate start (mod the
// number of candidates), so independent instances need not all begin with
// the first node.
func NewRoundRobin(start uint64) *RoundRobin { return &RoundRobin{next: start} }

// Pick implements NodePicker.
func (r *RoundRobin) Pick(nodes []cluster.Member, _ time.Time) (cluster.Member, bool) {
	var cands []cluster.Member
	for _, m := range nodes {
		if Candidate(m, 0) {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		return cluster.Member{}, false
	}
	r.mu.Lock()
	i := r.next % uint64(len(cands))
	r.next++
	r.mu.Unlock()
	return cands[i], true
}

// Pending implements NodePicker; round robin keeps none.
func (r *RoundRobin) Pending(string, time.Time) int { return 0 }
