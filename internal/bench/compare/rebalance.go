package compare

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsdirect/terraform-provider-wsdirect/node"
)

// RebalanceConfig describes a scale-out run: Nodes nodes hold Clients
// managed clients, one more node joins, and the run watches the old nodes
// move the new one its share (docs/design.md section 15). Start from
// DefaultRebalanceConfig; Rebalance rejects invalid fields.
type RebalanceConfig struct {
	// Env describes the servers; Env.BinDir is required. Env.Nodes is the
	// cluster before the scale-out.
	Env EnvConfig
	// Clients is the number of managed clients, at least 1.
	Clients int
	// Rate is the first-connect rate per second. Must be > 0.
	Rate float64
	// Workers splits the clients over this many fleets; 0 means one per
	// 8,000 clients.
	Workers int
	// WorkerArgv runs each fleet in a worker process (see DrillConfig).
	WorkerArgv []string
	// SourceIPs are the loopback addresses the clients bind, round-robin.
	SourceIPs []netip.Addr
	// Quiet is how long every client stays connected before the new node
	// starts, so that the scale-out meets a cluster at rest (the nodes wait
	// for their Settle of steady totals before a round). 0 starts it at
	// once.
	Quiet time.Duration
	// MaxRate is every node's -rebalance-max-rate. Must be >= 1.
	MaxRate float64
	// Goal is the max/mean the run waits for. Must be >= 1.
	Goal float64
	// GoalTime is how long the rebalance may take to reach Goal before the
	// result says it missed (the run goes on until Timeout). Must be > 0.
	GoalTime time.Duration
	// Timeout bounds the wait for Goal after the new node started. Must be
	// > 0.
	Timeout time.Duration
	// Watch is how long the run keeps watching after Goal was reached, to
	// see that nothing more moves. Must be > 0.
	Watch time.Duration
	// Sample is the interval of the time series. Must be > 0.
	Sample time.Duration
	// Terraform, when set, runs the scale-out through terraform apply of
	// modules/cluster on the local cloud (node_count n, then n+1); nil runs
	// it on local processes started directly (localcluster).
	Terraform *TerraformScaleOut
	// Progress receives a narrative; nil discards it.
	Progress io.Writer
}

// DefaultRebalanceConfig returns the scale-out of docs/benchmarks.md: 3
// nodes with 12,000 clients, then a fourth; the caller sets Env.BinDir
// (and WorkerArgv: 12,000 clients need two client processes).
func DefaultRebalanceConfig() RebalanceConfig {
	return RebalanceConfig{
		Env: DefaultEnvConfig(),
		// 4,000 per node before, 3,000 after: 3,000 clients to move.
		Clients: 12_000,
		// 2,000/s: all connected in 6 s.
		Rate:      2000,
		SourceIPs: append([]netip.Addr(nil), DefaultFleetSourceIPs...),
		// Twice the nodes' Settle (5 s): a cluster at rest.
		Quiet: 10 * time.Second,
		// The product's default (node.DefaultRebalanceConfig).
		MaxRate: node.DefaultRebalanceConfig().MaxRate,
		// The balance the rebalance is held to, within a minute.
		Goal:     1.10,
		GoalTime: 60 * time.Second,
		Timeout:  3 * time.Minute,
		// Longer than two rounds' settle times (5 s each): a second round,
		// if any, shows.
		Watch:  20 * time.Second,
		Sample: 200 * time.Millisecond,
	}
}

// validate reports the first problem with c (the servers are checked by
// StartEnv).
func (c *RebalanceConfig) validate() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("benchcompare: Clients must be at least 1, got %d", c.Clients)
	case !(c.Rate > 0):
		return fmt.Errorf("benchcompare: Rate must be > 0, got %g", c.Rate)
	case c.Workers < 0:
		return fmt.Errorf("benchcompare: Workers must not be negative, got %d", c.Workers)
	case c.Quiet < 0:
		return fmt.Errorf("benchcompare: Quiet must not be negative, got %s", c.Quiet)
	case len(c.WorkerArgv) == 0 && c.Clients > 19_000:
		return fmt.Errorf("benchcompare: %d Clients need worker processes (one process may open 20,000 files); set WorkerArgv", c.Clients)
	case !(c.MaxRate >= 1):
		return fmt.Errorf("benchcompare: MaxRate must be >= 1, got %g", c.MaxRate)
	case !(c.Goal >= 1):
		return fmt.Errorf("benchcompare: Goal must be >= 1, got %g", c.Goal)
	case c.GoalTime <= 0:
		return fmt.Errorf("benchcompare: GoalTime must be > 0, got %s", c.GoalTime)
	case c.Timeout <= 0:
		return fmt.Errorf("benchcompare: Timeout must be > 0, got %s", c.Timeout)
	case c.Watch <= 0:
		return fmt.Errorf("benchcompare: Watch must be > 0, got %s", c.Watch)
	case c.Sample <= 0:
		return fmt.Errorf("benchcompare: Sample must be > 0, got %s", c.Sample)
	}
	for _, ip := range c.SourceIPs {
		if !ip.IsLoopback() {
			return fmt.Errorf("benchcompare: SourceIPs: %s is not a loopback address", ip)
		}
	}
	return nil
}

// RebalanceSample is one point of the time series.
type RebalanceSample struct {
	// T is seconds since the scale-out started.
	T float64 `json:"t"`
	// Nodes are clients per node, as the clients report them.
	Nodes map[string]int `json:"nodes"`
	// Connected is how many clients had a connection.
	Connected int `json:"connected"`
	// Connects counts every client's successful connects so far.
	Connects int64 `json:"connects"`
	// Moved counts closes with the rebalance code so far.
	Moved int64 `json:"moved"`
	// AuthRequests and AuthRebalance are auth's request counters (all, and
	// those of moved clients), -1 when the scrape failed.
	AuthRequests  float64 `json:"auth_requests"`
	AuthRebalance float64 `json:"auth_rebalance"`
}

// RebalanceResult is what a scale-out run measured.
type RebalanceResult struct {
	// Path is how the cluster ran: "local processes" or "terraform apply
	// on the local cloud".
	Path    string  `json:"path"`
	Clients int     `json:"clients"`
	Workers int     `json:"workers"`
	MaxRate float64 `json:"max_rate"`
	Goal    float64 `json:"goal"`
	// GoalSeconds is the configured time allowed to reach Goal.
	GoalSeconds float64 `json:"goal_seconds"`
	// ConnectSeconds is how long every client's first connect took.
	ConnectSeconds float64 `json:"connect_seconds"`
	// Before and After are clients per node before the scale-out and at
	// the end of the watch.
	Before map[string]int `json:"before"`
	After  map[string]int `json:"after"`
	// NewNode is the node that joined; ReadySeconds is from the start of
	// the scale-out (the process started, or terraform apply begun) until
	// it served and auth listed it. The other times count from the same
	// start.
	NewNode      string  `json:"new_node"`
	ReadySeconds float64 `json:"ready_seconds"`
	// BalancedSeconds is from the scale-out's start until max/mean over all
	// nodes (of the clients connected at the time: a few are always on
	// their way from one node to another during a rebalance) was at most
	// Goal; -1 if never.
	BalancedSeconds float64 `json:"balanced_seconds"`
	// MetGoalTime says whether that was within GoalSeconds.
	MetGoalTime bool `json:"met_goal_time"`
	// BeforeMaxMean is max/mean over every node, the new one included,
	// just after it joined; AfterMaxMean at the end.
	BeforeMaxMean float64 `json:"before_max_mean"`
	AfterMaxMean  float64 `json:"after_max_mean"`
	// Moved counts closes with the rebalance code; Minimum is the least
	// that evens the cluster (what every node holds over the mean, summed);
	// MovedRatio is Moved / Minimum.
	Moved      int64   `json:"moved"`
	Minimum    float64 `json:"minimum"`
	MovedRatio float64 `json:"moved_ratio"`
	// MovedTwice counts clients moved more than once.
	MovedTwice int `json:"moved_twice"`
	// Lost is how many clients were not connected at the end, GaveUp how
	// many stopped for good.
	Lost   int `json:"lost"`
	GaveUp int `json:"gave_up"`
	// PeakReconnectRate is the most successful connects the clients made
	// in one second after the new node started; PeakAuthRate and
	// PeakAuthRebalanceRate are auth's requests in one second, all and
	// those of moved clients.
	PeakReconnectRate     float64 `json:"peak_reconnect_rate"`
	PeakAuthRate          float64 `json:"peak_auth_rate"`
	PeakAuthRebalanceRate float64 `json:"peak_auth_rebalance_rate"`
	// FailedAttempts counts connect attempts that failed after the new
	// node started, by kind.
	FailedAttempts map[string]int64 `json:"failed_attempts"`
	// Series is the time series, every Sample.
	Series []RebalanceSample `json:"series"`
}

// Rebalance runs the scale-out on a fresh local cluster and returns what it
// measured. It returns an error (with the partial result) when the clients
// do not connect, or the cluster does not reach Goal within Timeout.
func Rebalance(ctx context.Context, cfg RebalanceConfig) (*RebalanceResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Terraform == nil {
		if err := cfg.Env.validate(); err != nil {
			return nil, err
		}
	} else if err := cfg.Terraform.validate(); err != nil {
		return nil, err
	}
	if cfg.Workers == 0 {
		cfg.Workers = (cfg.Clients + 7_999) / 8_000
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	begin := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(cfg.Progress, "[%6.2fs] "+format+"\n", append([]any{time.Since(begin).Seconds()}, args...)...)
	}
	var env scaleOut
	var err error
	if cfg.Terraform == nil {
		env, err = startLocalScaleOut(ctx, &cfg, say)
	} else {
		env, err = startTerraformScaleOut(ctx, &cfg, say)
	}
	if err != nil {
		return nil, err
	}
	defer env.stop()

	res := &RebalanceResult{Path: env.path(), Clients: cfg.Clients, Workers: cfg.Workers, MaxRate: cfg.MaxRate, Goal: cfg.Goal,
		GoalSeconds: cfg.GoalTime.Seconds(), BalancedSeconds: -1}
	fc := DefaultFleetConfig()
	env.fleet(&fc)
	fc.Clients, fc.Rate, fc.SourceIPs = cfg.Clients, cfg.Rate, cfg.SourceIPs
	// The product's clients' backoff (client.DefaultManagedConfig): the
	// reconnect rate auth sees depends on it.
	fc.BackoffBase, fc.BackoffMax = 100*time.Millisecond, 30*time.Second
	fs, err := startFleets(ctx, fc, cfg.Workers, cfg.WorkerArgv)
	if err != nil {
		return nil, err
	}
	defer func() { _ = fs.Stop() }()
	say("connecting %d managed clients at %.0f/s over %d fleet(s)", cfg.Clients, cfg.Rate, len(fs))
	connectStart := time.Now()
	all := func(s FleetStatus) bool { return s.Clients == cfg.Clients && s.Connected == cfg.Clients }
	connectTimeout := 2*time.Duration(float64(cfg.Clients)/cfg.Rate*float64(time.Second)) + 30*time.Second
	s, err := waitStatus(ctx, fs, connectTimeout, all)
	if err != nil {
		return res, fmt.Errorf("only %d of %d clients connected within %v (failed attempts: %v)", s.Connected, cfg.Clients, connectTimeout, s.FailedAttempts)
	}
	res.ConnectSeconds = time.Unix(0, s.LastConnect).Sub(connectStart).Seconds()
	say("all %d connected in %.2fs; per node: %s; quiet for %v", cfg.Clients, res.ConnectSeconds, fmtCounts(s.Nodes), cfg.Quiet)
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(cfg.Quiet):
	}
	s = fs.Status()
	if !all(s) {
		return res, fmt.Errorf("%d of %d clients connected before the scale-out (failed attempts: %v)", s.Connected, cfg.Clients, s.FailedAttempts)
	}
	res.Before = s.Nodes
	base := s

	n := env.nodes() + 1
	mean := float64(cfg.Clients) / float64(n)
	for _, c := range res.Before {
		res.Minimum += math.Max(0, float64(c)-mean)
	}
	authURL := fc.AuthURL
	scraper := &http.Client{Timeout: 2 * time.Second}
	if fc.RootsPEM != "" {
		// Auth over https with a private CA's certificate (the local
		// cloud's ACME CA): without its root every scrape failed, and the
		// auth rate read as 0.
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM([]byte(fc.RootsPEM))
		scraper.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	}
	var series []RebalanceSample
	start := time.Now()
	sample := func() RebalanceSample {
		st := fs.Status()
		all, moved := scrapeAuth(ctx, scraper, authURL)
		return RebalanceSample{T: time.Since(start).Seconds(), Nodes: st.Nodes, Connected: st.Connected,
			Connects: st.Connects, Moved: st.Rebalanced, AuthRequests: all, AuthRebalance: moved}
	}
	series = append(series, sample())
	say("scaling out to %d nodes; the least that evens them is %.0f moves", n, res.Minimum)
	added := make(chan error, 1)
	go func() {
		name, err := env.grow(ctx)
		if err == nil {
			res.NewNode = name
		}
		added <- err
	}()
	tick := time.NewTicker(cfg.Sample)
	defer tick.Stop()
	deadline := start.Add(cfg.Timeout)
	var watchUntil time.Time
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case err := <-added:
			if err != nil {
				return res, fmt.Errorf("add node: %w", err)
			}
			res.ReadySeconds = time.Since(start).Seconds()
			say("%s serving and listed by auth %.2fs after the scale-out started", res.NewNode, res.ReadySeconds)
			added = nil
		case <-tick.C:
		}
		pt := sample()
		series = append(series, pt)
		if added != nil {
			// The goal counts from the new node's readiness on.
			if time.Now().After(deadline) {
				return res, fmt.Errorf("the new node was not ready within %v", cfg.Timeout)
			}
			continue
		}
		if res.BeforeMaxMean == 0 {
			res.BeforeMaxMean = maxMeanOver(pt.Nodes, n)
		}
		if res.BalancedSeconds < 0 && maxMeanOver(pt.Nodes, n) <= cfg.Goal {
			res.BalancedSeconds = pt.T
			res.MetGoalTime = pt.T <= cfg.GoalTime.Seconds()
			watchUntil = time.Now().Add(cfg.Watch)
			say("max/mean %.3f ≤ %.2f %.2fs after the scale-out started (%s); %d moved so far; %s; watching %v more",
				maxMeanOver(pt.Nodes, n), cfg.Goal, pt.T, res.NewNode, pt.Moved-base.Rebalanced, fmtCounts(pt.Nodes), cfg.Watch)
		}
		if !watchUntil.IsZero() && time.Now().After(watchUntil) {
			break
		}
		if watchUntil.IsZero() && time.Now().After(deadline) {
			break
		}
	}
	res.Series = series
	end := fs.Status()
	res.After = end.Nodes
	res.AfterMaxMean = maxMeanOver(end.Nodes, n)
	res.Moved = end.Rebalanced - base.Rebalanced
	res.MovedTwice = end.RebalancedTwice - base.RebalancedTwice
	if res.Minimum > 0 {
		res.MovedRatio = float64(res.Moved) / res.Minimum
	}
	res.Lost = cfg.Clients - end.Connected
	res.GaveUp = end.GaveUp
	res.FailedAttempts = map[string]int64{}
	for k, v := range end.FailedAttempts {
		if d := v - base.FailedAttempts[k]; d > 0 {
			res.FailedAttempts[k] = d
		}
	}
	res.PeakReconnectRate = peakPerSecond(series, func(p RebalanceSample) float64 { return float64(p.Connects) })
	res.PeakAuthRate = peakPerSecond(series, func(p RebalanceSample) float64 { return p.AuthRequests })
	res.PeakAuthRebalanceRate = peakPerSecond(series, func(p RebalanceSample) float64 { return p.AuthRebalance })
	if scraped := countScraped(series); scraped < 2 {
		// Not a rate of 0: auth's counters could not be read.
		res.PeakAuthRate, res.PeakAuthRebalanceRate = -1, -1
	}
	say("after %v: %s (max/mean %.3f); moved %d = %.2f× the least (%.0f), %d twice; %d lost; peaks per second: %.0f reconnects, %.0f auth requests (%.0f of moved clients)",
		cfg.Watch, fmtCounts(res.After), res.AfterMaxMean, res.Moved, res.MovedRatio, res.Minimum, res.MovedTwice, res.Lost,
		res.PeakReconnectRate, res.PeakAuthRate, res.PeakAuthRebalanceRate)
	if res.BalancedSeconds < 0 {
		return res, fmt.Errorf("max/mean never reached %.2f within %v of the scale-out (now %.3f)", cfg.Goal, cfg.Timeout, res.AfterMaxMean)
	}
	return res, nil
}

// maxMeanOver is max/mean of counts over n nodes (a node holding nothing
// counts, even when it is not in the map yet).
func maxMeanOver(counts map[string]int, n int) float64 {
	total, mx := 0, 0
	for _, c := range counts {
		total += c
		mx = max(mx, c)
	}
	if total == 0 || n == 0 {
		return 0
	}
	return float64(mx) / (float64(total) / float64(n))
}

// peakPerSecond is the largest increase of a counter between two samples
// at most one second apart, per second of their distance rounded up to a
// second: the most events seen in any one-second window, to within the
// sample interval.
func peakPerSecond(series []RebalanceSample, v func(RebalanceSample) float64) float64 {
	peak := 0.0
	for i := range series {
		if v(series[i]) < 0 {
			continue
		}
		for j := i + 1; j < len(series) && series[j].T-series[i].T <= 1.0+1e-9; j++ {
			if d := v(series[j]) - v(series[i]); v(series[j]) >= 0 && d > peak {
				peak = d
			}
		}
	}
	return peak
}

// countScraped is how many samples read auth's counters.
func countScraped(series []RebalanceSample) int {
	n := 0
	for _, p := range series {
		if p.AuthRequests >= 0 {
			n++
		}
	}
	return n
}

// scrapeAuth reads auth's request counters from its /metrics: every
// request, and those of moved clients (-1, -1 when it cannot).
func scrapeAuth(ctx context.Context, c *http.Client, authURL string) (all, moved float64) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(authURL, "/")+"/metrics", nil)
	if err != nil {
		return -1, -1
	}
	res, err := c.Do(req)
	if err != nil {
		return -1, -1
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return -1, -1
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		return -1, -1
	}
	sum := func(name string) float64 {
		mf, ok := mfs[name]
		if !ok {
			return -1
		}
		s := 0.0
		for _, m := range mf.GetMetric() {
			s += m.GetCounter().GetValue()
		}
		return s
	}
	return sum("wsdirect_auth_requests_total"), sum("wsdirect_auth_rebalance_requests_total")
}

// WriteTable prints the result as aligned lines.
func (r *RebalanceResult) WriteTable(w io.Writer) {
	n := len(r.Before) + 1
	fmt.Fprintf(w, "scale-out          %d → %d nodes (%s), %d clients over %d fleet(s), rebalance at most %g/s\n", n-1, n, r.Path, r.Clients, r.Workers, r.MaxRate)
	fmt.Fprintf(w, "first connects     %.2fs\n", r.ConnectSeconds)
	fmt.Fprintf(w, "before             %s\n", fmtCounts(r.Before))
	fmt.Fprintf(w, "new node           %s, serving %.2fs after the scale-out started; max/mean then %.3f\n", r.NewNode, r.ReadySeconds, r.BeforeMaxMean)
	if r.BalancedSeconds >= 0 {
		verdict := "met"
		if !r.MetGoalTime {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "max/mean ≤ %.2f    %.2fs after the scale-out started, %.2fs after the new node served (goal ≤ %.0fs: %s)\n",
			r.Goal, r.BalancedSeconds, r.BalancedSeconds-r.ReadySeconds, r.GoalSeconds, verdict)
	} else {
		fmt.Fprintf(w, "max/mean ≤ %.2f    never\n", r.Goal)
	}
	fmt.Fprintf(w, "after              %s (max/mean %.3f)\n", fmtCounts(r.After), r.AfterMaxMean)
	fmt.Fprintf(w, "moved              %d, %.2f× the least (%.0f); moved twice: %d\n", r.Moved, r.MovedRatio, r.Minimum, r.MovedTwice)
	fmt.Fprintf(w, "lost               %d (gave up: %d)\n", r.Lost, r.GaveUp)
	if r.PeakAuthRate < 0 {
		fmt.Fprintf(w, "peak per second    %.0f reconnects; auth requests unknown (its /metrics could not be read)\n", r.PeakReconnectRate)
	} else {
		fmt.Fprintf(w, "peak per second    %.0f reconnects; %.0f auth requests, %.0f of them from moved clients\n", r.PeakReconnectRate, r.PeakAuthRate, r.PeakAuthRebalanceRate)
	}
	keys := make([]string, 0, len(r.FailedAttempts))
	for k := range r.FailedAttempts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, r.FailedAttempts[k])
	}
	fmt.Fprintf(w, "failed attempts    %s\n", strings.Join(parts, ", "))
}
