package balance

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
)

// Strategy names a picking strategy for SimulateBurst.
type Strategy string

const (
	// StrategyP2C is Picker as the Server runs it: power-of-two-choices with
	// pending accounting, own pending weighed by the number of auth
	// instances (Picker.SetPeers).
	StrategyP2C Strategy = "p2c"
	// StrategyP2COwnPending is power-of-two-choices counting only this
	// instance's own pending assignments.
	StrategyP2COwnPending Strategy = "p2c-own-pending"
	// StrategyP2CNoPending is power-of-two-choices on gossiped counts only.
	StrategyP2CNoPending Strategy = "p2c-no-pending"
	// StrategyLeastLoaded is the naive LeastLoaded baseline.
	StrategyLeastLoaded Strategy = "least-loaded"
	// StrategyRoundRobin is RoundRobin, one cycle per auth instance.
	StrategyRoundRobin Strategy = "round-robin"
)

// Strategies lists every Strategy, for tables and plots.
var Strategies = []Strategy{StrategyP2C, StrategyP2COwnPending, StrategyP2CNoPending, StrategyLeastLoaded, StrategyRoundRobin}

// SimConfig describes a discrete-time simulation of a burst of assignments
// made by several auth instances from stale gossiped counts. Start from
// DefaultSimConfig; SimulateBurst rejects invalid fields.
type SimConfig struct {
	// Strategy is the picker every auth instance runs.
	Strategy Strategy
	// Nodes is the number of nodes, at least 1.
	Nodes int
	// Auths is the number of auth instances, at least 1; assignment k goes
	// to auth k mod Auths, as behind a round-robin load balancer.
	Auths int
	// Cap is every node's connection cap; 0 means 2 × Assignments / Nodes
	// (at least 1), so capacity does not mask imbalance.
	Cap int
	// Assignments is the size of the burst, at least 1.
	Assignments int
	// Rate is assignments per second across all auth instances. Must be
	// > 0.
	Rate float64
	// Lag is how old a count is when an auth instance hears it; 0 means
	// at once.
	Lag time.Duration
	// PublishInterval is how often nodes publish their count; 0 publishes
	// continuously (every assignment is visible exactly Lag later).
	PublishInterval time.Duration
	// TokenTTL bounds pending assignments. Must be > 0.
	TokenTTL time.Duration
	// Settle is the Picker's settle time; 0 retires a pending assignment
	// as soon as a newer count arrives.
	Settle time.Duration
	// Seed seeds every random choice. The same config gives the same result.
	Seed uint64
}

// DefaultSimConfig is the burst behind docs/benchmarks.md: 10 nodes, 3 auth
// instances, 1 s gossip lag, 100,000 assignments at 20,000/s.
func DefaultSimConfig() SimConfig {
	return SimConfig{
		// The auth service's own picker.
		Strategy:    StrategyP2C,
		Nodes:       10,
		Auths:       3,
		Assignments: 100_000,
		// 20,000/s: the burst lasts 5 s, five gossip lags.
		Rate: 20_000,
		// 1 s: the count freshness the cluster aims at (p99).
		Lag: time.Second,
		// 100 ms: counts arrive in steps, as gossip delivers them, not
		// continuously.
		PublishInterval: 100 * time.Millisecond,
		// The token TTL (token.DefaultTTL).
		TokenTTL: 30 * time.Second,
		// The auth service's DefaultPendingSettle, equal to Lag.
		Settle: authsvc.DefaultPendingSettle,
		Seed:   DefaultSeed,
	}
}

// SimResult is the outcome of SimulateBurst.
type SimResult struct {
	Strategy Strategy
	// Counts is the final connection count of each node.
	Counts []int
	Max    int
	Min    int
	Mean   float64
	// MaxOverMean is the balance figure docs/design.md section 11 aims at
	// (≤ 1.05).
	MaxOverMean float64
	// PeakMaxOverMean is the worst max/mean seen at any of 100 checkpoints
	// during the burst (from the 10th on, so tiny counts do not dominate):
	// herding shows here even when the final counts happen to even out.
	PeakMaxOverMean float64
	// Refused counts assignments for which no node had room.
	Refused int
}

// String is a one-line summary.
func (r SimResult) String() string {
	return fmt.Sprintf("%-15s max/mean=%.4f peak max/mean=%.4f max=%d min=%d mean=%.1f refused=%d",
		r.Strategy, r.MaxOverMean, r.PeakMaxOverMean, r.Max, r.Min, r.Mean, r.Refused)
}

// validate reports the first problem with c.
func (c SimConfig) validate() error {
	switch {
	case c.Nodes < 1 || c.Auths < 1 || c.Assignments < 1:
		return fmt.Errorf("sim: Nodes, Auths and Assignments must be at least 1, got %d, %d and %d", c.Nodes, c.Auths, c.Assignments)
	case c.Cap < 0:
		return fmt.Errorf("sim: Cap must not be negative, got %d", c.Cap)
	case !(c.Rate > 0):
		return fmt.Errorf("sim: Rate must be > 0, got %g", c.Rate)
	case c.Lag < 0 || c.PublishInterval < 0 || c.Settle < 0:
		return fmt.Errorf("sim: Lag, PublishInterval and Settle must not be negative, got %s, %s and %s", c.Lag, c.PublishInterval, c.Settle)
	case c.TokenTTL <= 0:
		return fmt.Errorf("sim: TokenTTL must be > 0, got %s", c.TokenTTL)
	}
	switch c.Strategy {
	case StrategyP2C, StrategyP2COwnPending, StrategyP2CNoPending, StrategyLeastLoaded, StrategyRoundRobin:
	default:
		return fmt.Errorf("sim: unknown Strategy %q", c.Strategy)
	}
	return nil
}

// capOrDerived is Cap, or for 0 the documented 2 × Assignments / Nodes.
func (c SimConfig) capOrDerived() int {
	if c.Cap > 0 {
		return c.Cap
	}
	return max(1, 2*c.Assignments/c.Nodes)
}

// SimulateBurst runs cfg: assignments arrive at a fixed rate, a client's
// connection shows on its node at once, and every auth instance sees the
// counts as they were Lag ago (as of the last publish tick), heard Lag after
// they were published. Each auth instance has its own picker. An invalid
// config yields an error.
func SimulateBurst(cfg SimConfig) (SimResult, error) {
	if err := cfg.validate(); err != nil {
		return SimResult{}, err
	}
	cfg.Cap = cfg.capOrDerived()
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	pickers := make([]authsvc.NodePicker, cfg.Auths)
	for a := range pickers {
		rnd := rand.New(rand.NewPCG(cfg.Seed, uint64(a)+1))
		switch cfg.Strategy {
		case StrategyP2C, StrategyP2COwnPending:
			p := authsvc.NewPicker(rnd, cfg.TokenTTL)
			p.SetSettle(cfg.Settle)
			if cfg.Strategy == StrategyP2C {
				p.SetPeers(cfg.Auths)
			}
			pickers[a] = p
		case StrategyP2CNoPending:
			// A pending lifetime of 1 ns retires every assignment before
			// the next pick (picks are at least 1/Rate apart).
			pickers[a] = authsvc.NewPicker(rnd, time.Nanosecond)
		case StrategyLeastLoaded:
			pickers[a] = authsvc.LeastLoaded{}
		case StrategyRoundRobin:
			// Start each instance at a different node, as independent
			// processes would.
			pickers[a] = authsvc.NewRoundRobin(rnd.Uint64())
		}
	}
	actual := make([]int, cfg.Nodes)  // what the nodes hold now
	visible := make([]int, cfg.Nodes) // what the auth instances see
	type event struct {
		at   time.Duration
		node int
	}
	log := make([]event, 0, cfg.Assignments) // assignments, in time order
	seen := 0                                // log[:seen] is in visible
	view := make([]cluster.Member, cfg.Nodes)
	for i := range view {
		view[i] = cluster.Member{
			Name: "node-" + strconv.Itoa(i), Role: cluster.RoleNode, Addr: "127.0.0.1", Port: 8000 + i,
			Cap: cfg.Cap, Alive: true,
		}
	}
	res := SimResult{Strategy: cfg.Strategy}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	for k := 0; k < cfg.Assignments; k++ {
		at := time.Duration(k) * interval
		// The newest published state the auth instances have heard.
		published := at - cfg.Lag
		if cfg.PublishInterval > 0 {
			published = floorDiv(published, cfg.PublishInterval) * cfg.PublishInterval
		}
		for seen < len(log) && log[seen].at <= published {
			visible[log[seen].node]++
			seen++
		}
		heard := t0.Add(published + cfg.Lag)
		for i := range view {
			view[i].Conns = visible[i]
			view[i].UpdatedAt = heard
		}
		m, ok := pickers[k%cfg.Auths].Pick(view, t0.Add(at))
		if !ok {
			res.Refused++
			continue
		}
		n := m.Port - 8000
		// The node enforces its cap against its true count.
		if actual[n] >= cfg.Cap {
			res.Refused++
			continue
		}
		actual[n]++
		log = append(log, event{at: at, node: n})
		if checkpoint := cfg.Assignments / 100; checkpoint > 0 && (k+1)%checkpoint == 0 && (k+1)/checkpoint >= 10 {
			res.PeakMaxOverMean = max(res.PeakMaxOverMean, summarize(actual).MaxOverMean)
		}
	}
	b := summarize(actual)
	res.Counts, res.Max, res.Min, res.Mean, res.MaxOverMean = actual, b.Max, b.Min, b.Mean, b.MaxOverMean
	res.PeakMaxOverMean = max(res.PeakMaxOverMean, res.MaxOverMean)
	return res, nil
}

// summarize summarises counts.
func summarize(counts []int) SimResult {
	r := SimResult{Min: counts[0]}
	total := 0
	for _, c := range counts {
		total += c
		r.Max = max(r.Max, c)
		r.Min = min(r.Min, c)
	}
	r.Mean = float64(total) / float64(len(counts))
	if r.Mean > 0 {
		r.MaxOverMean = float64(r.Max) / r.Mean
	}
	return r
}

// floorDiv is d rounded down to a multiple of m (also for negative d).
func floorDiv(d, m time.Duration) time.Duration {
	q := d / m
	if d%m != 0 && d < 0 {
		q--
	}
	return q
}
