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
// made by several auth instances from stale gossiped counts.
type SimConfig struct {
	// Strategy is the picker every auth instance runs. Default StrategyP2C.
	Strategy Strategy
	// Nodes is the number of nodes. Default 10.
	Nodes int
	// Auths is the number of auth instances; assignment k goes to auth
	// k mod Auths, as behind a round-robin load balancer. Default 3.
	Auths int
	// Cap is every node's connection cap. Default 2 × Assignments / Nodes,
	// so capacity does not mask imbalance.
	Cap int
	// Assignments is the size of the burst. Default 100,000.
	Assignments int
	// Rate is assignments per second across all auth instances.
	// Default 20,000 (5 s for the default burst).
	Rate float64
	// Lag is how old a count is when an auth instance hears it. Default 1 s.
	Lag time.Duration
	// PublishInterval is how often nodes publish their count; 0 publishes
	// continuously (every assignment is visible exactly Lag later).
	// Default 100 ms.
	PublishInterval time.Duration
	// TokenTTL bounds pending assignments. Default 30 s.
	TokenTTL time.Duration
	// Settle is the Picker's settle time. Default Lag.
	Settle time.Duration
	// Seed seeds every random choice. The same config gives the same result.
	Seed uint64
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

func (c SimConfig) withDefaults() (SimConfig, error) {
	if c.Strategy == "" {
		c.Strategy = StrategyP2C
	}
	if c.Nodes == 0 {
		c.Nodes = 10
	}
	if c.Auths == 0 {
		c.Auths = 3
	}
	if c.Assignments == 0 {
		c.Assignments = 100_000
	}
	if c.Cap == 0 {
		c.Cap = 2 * c.Assignments / c.Nodes
		if c.Cap < 1 {
			c.Cap = 1
		}
	}
	if c.Rate == 0 {
		c.Rate = 20_000
	}
	if c.Lag == 0 {
		c.Lag = time.Second
	}
	if c.PublishInterval == 0 {
		c.PublishInterval = 100 * time.Millisecond
	} else if c.PublishInterval < 0 {
		c.PublishInterval = 0
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 30 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = c.Lag
	}
	switch {
	case c.Nodes < 1 || c.Auths < 1 || c.Assignments < 1 || c.Cap < 1:
		return c, fmt.Errorf("sim: nodes, auths, assignments and cap must be positive")
	case c.Rate <= 0 || c.Lag < 0:
		return c, fmt.Errorf("sim: rate must be positive and lag non-negative")
	}
	switch c.Strategy {
	case StrategyP2C, StrategyP2COwnPending, StrategyP2CNoPending, StrategyLeastLoaded, StrategyRoundRobin:
	default:
		return c, fmt.Errorf("sim: unknown strategy %q", c.Strategy)
	}
	return c, nil
}

// SimulateBurst runs cfg: assignments arrive at a fixed rate, a client's
// connection shows on its node at once, and every auth instance sees the
// counts as they were Lag ago (as of the last publish tick), heard Lag after
// they were published. Each auth instance has its own picker. An invalid
// config yields an error.
func SimulateBurst(cfg SimConfig) (SimResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return SimResult{}, err
	}
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
