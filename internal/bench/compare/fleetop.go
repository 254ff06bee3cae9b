package compare

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/localcloud"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// The fleet operations FleetOp measures.
const (
	// OpUpgrade publishes a new release and applies it: every node and the
	// auth host are replaced, rolling (modules/cluster's
	// create_before_destroy and readiness wait).
	OpUpgrade = "upgrade"
	// OpScaleIn applies node_count - 1: the last node drains and ends.
	OpScaleIn = "scale-in"
)

// upgradeVersion is the release an upgrade deploys.
const upgradeVersion = "0.0.2"

// FleetOpConfig describes a fleet operation through terraform apply of
// modules/cluster on the local cloud, under managed clients held open
// (docs/design.md section 15). Start from DefaultFleetOpConfig; FleetOp
// rejects invalid fields.
type FleetOpConfig struct {
	// Op is OpUpgrade or OpScaleIn.
	Op string
	// Nodes is node_count before the operation: at least 1, at least 2 for
	// a scale-in.
	Nodes int
	// Clients is the number of managed clients, at least 1.
	Clients int
	// Rate is the first-connect rate per second. Must be > 0.
	Rate float64
	// Workers splits the clients over this many fleets; 0 means one per
	// 8,000 clients.
	Workers int
	// WorkerArgv runs each fleet in a worker process (see DrillConfig);
	// empty runs them in this process.
	WorkerArgv []string
	// SourceIPs are the loopback addresses the clients bind, round-robin.
	SourceIPs []netip.Addr
	// Quiet is how long every client stays connected before the operation.
	// 0 starts it at once.
	Quiet time.Duration
	// Timeout bounds the operation: the apply, and the wait after it for
	// every client to be connected again. Must be > 0.
	Timeout time.Duration
	// Sample is the interval of the time series. Must be > 0.
	Sample time.Duration
	// Terraform runs the cluster (TerraformScaleOut's fields: terraform,
	// repository, work directory, local cloud, users). Required fields as
	// there.
	Terraform TerraformScaleOut
	// Progress receives a narrative; nil discards it.
	Progress io.Writer
}

// DefaultFleetOpConfig returns the operations of docs/benchmarks.md: 3
// nodes and 6,000 clients; the caller sets Op and Terraform's Terraform,
// RepoDir and WorkDir.
func DefaultFleetOpConfig() FleetOpConfig {
	tf := DefaultTerraformScaleOut()
	// A node's unit stops within -drain-deadline (30 s) + 30 s; the local
	// cloud must give it that much, as EC2's shutdown does (docs/design.md
	// section 15), or a slow drain would be cut short by the harness.
	tf.Cloud.MaxStopTimeout = 90 * time.Second
	// Ranges and a port of their own, apart from the local cloud's defaults
	// (the scale-out's) and the tests', so the runs can share a machine.
	tf.Cloud.Listen = "127.0.0.1:0"
	tf.Cloud.VPCCIDR = netip.MustParsePrefix("127.56.0.0/16")
	tf.Cloud.PublicCIDR = netip.MustParsePrefix("127.57.0.0/16")
	return FleetOpConfig{
		Nodes:   3,
		Clients: 6000,
		// As the terraform scale-out: first logins pay bcrypt's default
		// cost on the auth host.
		Rate:      300,
		SourceIPs: append([]netip.Addr(nil), DefaultFleetSourceIPs...),
		// The nodes' gossip settles and the clients' counts are steady.
		Quiet: 5 * time.Second,
		// Two instance boots with ACME orders, one after the other (auth,
		// then the nodes), drains, and the reconnects, on a loaded machine.
		Timeout:   6 * time.Minute,
		Sample:    250 * time.Millisecond,
		Terraform: tf,
	}
}

func (c *FleetOpConfig) validate() error {
	switch {
	case c.Op != OpUpgrade && c.Op != OpScaleIn:
		return fmt.Errorf("benchcompare: Op must be %q or %q, got %q", OpUpgrade, OpScaleIn, c.Op)
	case c.Nodes < 1 || (c.Op == OpScaleIn && c.Nodes < 2):
		return fmt.Errorf("benchcompare: Nodes must be at least 1 (2 for a scale-in), got %d", c.Nodes)
	case c.Clients < 1:
		return fmt.Errorf("benchcompare: Clients must be at least 1, got %d", c.Clients)
	case !(c.Rate > 0):
		return fmt.Errorf("benchcompare: Rate must be > 0, got %g", c.Rate)
	case c.Workers < 0:
		return fmt.Errorf("benchcompare: Workers must not be negative, got %d", c.Workers)
	case len(c.WorkerArgv) == 0 && c.Clients > 19_000:
		return fmt.Errorf("benchcompare: %d Clients need worker processes (one process may open 20,000 files); set WorkerArgv", c.Clients)
	case c.Quiet < 0:
		return fmt.Errorf("benchcompare: Quiet must not be negative, got %s", c.Quiet)
	case c.Timeout <= 0:
		return fmt.Errorf("benchcompare: Timeout must be > 0, got %s", c.Timeout)
	case c.Sample <= 0:
		return fmt.Errorf("benchcompare: Sample must be > 0, got %s", c.Sample)
	}
	for _, ip := range c.SourceIPs {
		if !ip.IsLoopback() {
			return fmt.Errorf("benchcompare: SourceIPs: %s is not a loopback address", ip)
		}
	}
	return c.Terraform.validate()
}

// FleetOpSample is one point of the time series.
type FleetOpSample struct {
	// T is seconds since the apply began.
	T float64 `json:"t"`
	// Nodes are clients per node, as the clients report them.
	Nodes     map[string]int `json:"nodes"`
	Connected int            `json:"connected"`
	Connects  int64          `json:"connects"`
}

// FleetOpObservation is one look at the instances.
type FleetOpObservation struct {
	// T is seconds since the apply began, when the look started.
	T float64 `json:"t"`
	// ReadyNodes counts node instances whose /readyz answered 200; -1 when
	// the local cloud did not answer. Unanswered counts the node instances
	// that neither answered nor refused within the check's timeout (a
	// starved machine), whose readiness this look does not know.
	ReadyNodes int `json:"ready_nodes"`
	Unanswered int `json:"unanswered,omitempty"`
	// Auth is each auth instance's request counter (by instance ID); an
	// instance whose scrape failed is missing.
	Auth map[string]float64 `json:"auth"`
}

// FleetOpResult is what a fleet operation measured.
type FleetOpResult struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	// DrainRate and DrainDeadline are the nodes' settings, 0 for the
	// binary's defaults.
	DrainRate     int     `json:"drain_rate"`
	DrainDeadline float64 `json:"drain_deadline_seconds"`
	Clients       int     `json:"clients"`
	Workers       int     `json:"workers"`
	// NodesBefore and NodesAfter are node_count before and after.
	NodesBefore int `json:"nodes_before"`
	NodesAfter  int `json:"nodes_after"`
	// ConnectSeconds is how long every client's first connect took.
	ConnectSeconds float64 `json:"connect_seconds"`
	// Before and After are clients per node before the apply and at the end.
	Before map[string]int `json:"before"`
	After  map[string]int `json:"after"`
	// ApplySeconds is terraform apply's run; TotalSeconds is from its start
	// until it had returned and every client was connected again.
	ApplySeconds float64 `json:"apply_seconds"`
	TotalSeconds float64 `json:"total_seconds"`
	// AuthURLBefore and AuthURLAfter are the module's auth_url output.
	AuthURLBefore string `json:"auth_url_before"`
	AuthURLAfter  string `json:"auth_url_after"`
	// Lost is how many clients were not connected at the end; GaveUp how
	// many stopped for good.
	Lost   int `json:"lost"`
	GaveUp int `json:"gave_up"`
	// Disconnected counts clients that lost their connection during the
	// operation; GapP50Ms, GapP99Ms and GapMaxMs are percentiles over them
	// of each one's longest time without a connection.
	Disconnected int     `json:"disconnected"`
	GapP50Ms     float64 `json:"gap_p50_ms"`
	GapP99Ms     float64 `json:"gap_p99_ms"`
	GapMaxMs     float64 `json:"gap_max_ms"`
	// CloseCodes counts connections that ended during the operation, by
	// close code: 4000 is a drain, 1006 a connection that broke without a
	// close frame (a node that ended before it drained).
	CloseCodes map[string]int64 `json:"close_codes"`
	// MinReadyNodes and MaxReadyNodes are the fewest and most node instances
	// answering /readyz with 200 in any look during the operation (a look
	// in which no node was ready and some did not answer in time counts
	// as unknown, not as zero).
	MinReadyNodes int `json:"min_ready_nodes"`
	MaxReadyNodes int `json:"max_ready_nodes"`
	// PeakAuthRate is the most requests the auth hosts (old and new
	// together) served in one second; PeakReconnectRate the most successful
	// connects the clients made in one second.
	PeakAuthRate      float64 `json:"peak_auth_rate"`
	PeakReconnectRate float64 `json:"peak_reconnect_rate"`
	// FailedAttempts counts connect attempts that failed during the
	// operation, by kind.
	FailedAttempts map[string]int64 `json:"failed_attempts"`
	// Series is the clients' time series, every Sample; Observed the
	// instances', as often as the checks allow.
	Series   []FleetOpSample      `json:"series"`
	Observed []FleetOpObservation `json:"observed"`
}

// FleetOp runs the operation on a fresh cluster applied on the local cloud
// and returns what it measured. It returns an error (with the partial
// result) when the clients do not connect, the apply fails, or clients are
// still without a connection at Timeout.
func FleetOp(ctx context.Context, cfg FleetOpConfig) (*FleetOpResult, error) {
	if err := cfg.validate(); err != nil {
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
	t, err := startTerraformCluster(ctx, cfg.Terraform, cfg.Nodes, say)
	if err != nil {
		return nil, err
	}
	defer t.stop()

	after := cfg.Nodes
	if cfg.Op == OpScaleIn {
		after--
	}
	res := &FleetOpResult{Op: cfg.Op, Path: PathTerraform, Clients: cfg.Clients, Workers: cfg.Workers,
		DrainRate: cfg.Terraform.NodeDrainRate, DrainDeadline: cfg.Terraform.NodeDrainDeadline.Seconds(),
		NodesBefore: cfg.Nodes, NodesAfter: after, AuthURLBefore: t.mod.AuthURL}
	fc := DefaultFleetConfig()
	t.fleet(&fc)
	fc.Clients, fc.Rate, fc.SourceIPs = cfg.Clients, cfg.Rate, cfg.SourceIPs
	// The product's clients' backoff (client.DefaultManagedConfig).
	fc.BackoffBase, fc.BackoffMax = 100*time.Millisecond, 30*time.Second
	fs, err := startFleets(ctx, fc, cfg.Workers, cfg.WorkerArgv)
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = fs.Stop()
		}
	}()
	say("connecting %d managed clients at %.0f/s over %d fleet(s)", cfg.Clients, cfg.Rate, len(fs))
	connectStart := time.Now()
	all := func(s FleetStatus) bool { return s.Clients == cfg.Clients && s.Connected == cfg.Clients }
	connectTimeout := 2*time.Duration(float64(cfg.Clients)/cfg.Rate*float64(time.Second)) + 60*time.Second
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
	base := fs.Status()
	if !all(base) {
		return res, fmt.Errorf("%d of %d clients connected before the %s (failed attempts: %v)", base.Connected, cfg.Clients, cfg.Op, base.FailedAttempts)
	}
	res.Before = base.Nodes
	// The gaps are counted over the fleet's whole life; a client that lost
	// its connection before the operation would count too. In-process
	// fleets report gaps all along, so say so when there are any (worker
	// processes report them only at the end).
	if n := len(base.Gaps); n != 0 {
		say("note: %d clients lost a connection before the %s; their gaps count too", n, cfg.Op)
	}

	if cfg.Op == OpUpgrade {
		rel, err := t.cloud.PublishRelease(upgradeVersion)
		if err != nil {
			return res, err
		}
		if err := t.mod.SetRelease(rel); err != nil {
			return res, err
		}
		say("published release %s; applying it: every node and the auth host are replaced, rolling", rel.Version)
	} else {
		say("applying node_count = %d", after)
	}

	start := time.Now()
	// The instances are watched apart from the clients: a check of an
	// instance that is going away may take its whole timeout, and the
	// clients' series must keep its pace.
	obs := newFleetOpObserver(t, start)
	obsCtx, obsStop := context.WithCancel(ctx)
	obsDone := make(chan []FleetOpObservation, 1)
	go func() { obsDone <- obs.run(obsCtx, cfg.Sample) }()
	defer func() {
		if obsStop != nil {
			obsStop()
			<-obsDone
		}
	}()
	applied := make(chan error, 1)
	go func() { applied <- t.mod.Apply(ctx, after) }()
	var series []FleetOpSample
	sample := func() {
		st := fs.Status()
		series = append(series, FleetOpSample{T: time.Since(start).Seconds(), Nodes: st.Nodes, Connected: st.Connected, Connects: st.Connects})
	}
	sample()
	tick := time.NewTicker(cfg.Sample)
	defer tick.Stop()
	deadline := start.Add(cfg.Timeout)
	var applyErr error
	lastSay := start
	for applied != nil || !all(fs.Status()) {
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case err := <-applied:
			applyErr, applied = err, nil
			res.ApplySeconds = time.Since(start).Seconds()
			if err != nil {
				say("terraform apply failed after %.2fs: %v", res.ApplySeconds, err)
			} else {
				say("terraform apply done in %.2fs", res.ApplySeconds)
			}
		case <-tick.C:
		}
		sample()
		if applyErr != nil {
			break
		}
		if now := time.Now(); now.Sub(lastSay) >= 5*time.Second {
			lastSay = now
			p := series[len(series)-1]
			say("%.0fs into the %s: %d of %d connected; per node: %s", p.T, cfg.Op, p.Connected, cfg.Clients, fmtCounts(p.Nodes))
		}
	}
	sample()
	res.TotalSeconds = time.Since(start).Seconds()
	obsStop()
	observed := <-obsDone
	obsStop = nil
	res.Series, res.Observed = series, observed
	res.AuthURLAfter = t.mod.AuthURL
	end := fs.Status()
	res.After = end.Nodes
	res.Lost = cfg.Clients - end.Connected
	// The gaps as the clients saw them, before they close.
	_ = fs.Stop()
	stopped = true
	final := fs.Status()
	res.GaveUp = final.GaveUp
	gaps := slices.Clone(final.Gaps)
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	res.Disconnected = len(gaps)
	if n := len(gaps); n > 0 {
		res.GapP50Ms = float64(gaps[(n-1)*50/100])
		res.GapP99Ms = float64(gaps[(n-1)*99/100])
		res.GapMaxMs = float64(gaps[n-1])
	}
	res.CloseCodes = map[string]int64{}
	for k, v := range end.CloseCodes {
		if d := v - base.CloseCodes[k]; d > 0 {
			res.CloseCodes[strconv.Itoa(k)] = d
		}
	}
	res.FailedAttempts = map[string]int64{}
	for k, v := range end.FailedAttempts {
		if d := v - base.FailedAttempts[k]; d > 0 {
			res.FailedAttempts[k] = d
		}
	}
	res.MinReadyNodes, res.MaxReadyNodes = -1, 0
	for _, p := range observed {
		if p.ReadyNodes < 0 || (p.Unanswered > 0 && p.ReadyNodes == 0) {
			// Nothing known about this look: no node said it is ready,
			// and some said nothing at all.
			continue
		}
		if res.MinReadyNodes < 0 || p.ReadyNodes < res.MinReadyNodes {
			res.MinReadyNodes = p.ReadyNodes
		}
		res.MaxReadyNodes = max(res.MaxReadyNodes, p.ReadyNodes)
	}
	res.PeakAuthRate = peakAuthPerSecond(observed)
	res.PeakReconnectRate = peakOf(series, func(p FleetOpSample) float64 { return float64(p.Connects) })
	say("%s: %d lost (gave up %d); %d clients without a connection for a while: p50 %.0f ms, p99 %.0f ms, max %.0f ms; closes %v; ready nodes %d..%d; peak auth %.0f/s, reconnects %.0f/s; total %.2fs",
		cfg.Op, res.Lost, res.GaveUp, res.Disconnected, res.GapP50Ms, res.GapP99Ms, res.GapMaxMs, res.CloseCodes,
		res.MinReadyNodes, res.MaxReadyNodes, res.PeakAuthRate, res.PeakReconnectRate, res.TotalSeconds)
	if applyErr != nil {
		return res, fmt.Errorf("terraform apply: %w", applyErr)
	}
	if res.Lost > 0 {
		return res, fmt.Errorf("%d of %d clients were not connected %v after the apply began", res.Lost, cfg.Clients, cfg.Timeout)
	}
	t.n = after
	if err := t.mod.WaitServing(ctx, after, cfg.Terraform.ReadyTimeout); err != nil {
		return res, fmt.Errorf("after the %s: %w", cfg.Op, err)
	}
	return res, nil
}

// fleetOpObserver watches the instances during an operation: which node
// instances are ready, each auth instance's request counter, and the
// clients' routes file (a new instance's public address, an Elastic IP that
// moved).
type fleetOpObserver struct {
	t        *terraformScaleOut
	start    time.Time
	hc       *http.Client // plain HTTP: /readyz on port 80
	auth     *http.Client // TLS with the auth URL's name, dialled at an instance's private IP
	authPort string
	routes   []byte
}

// observeTimeout bounds each check: an instance that answers nothing
// within it is unanswered (or its counter unread) this time.
const observeTimeout = 2 * time.Second

func newFleetOpObserver(t *terraformScaleOut, start time.Time) *fleetOpObserver {
	o := &fleetOpObserver{t: t, start: start, hc: &http.Client{Timeout: observeTimeout}, authPort: "443"}
	name := ""
	if u, err := url.Parse(t.mod.AuthURL); err == nil {
		name = u.Hostname()
		if p := u.Port(); p != "" {
			o.authPort = p
		}
	}
	dial := &net.Dialer{Timeout: observeTimeout}
	o.auth = &http.Client{Timeout: observeTimeout, Transport: &http.Transport{
		// Every request names its instance's private address; the
		// certificate names the auth URL's host (which may have moved).
		TLSClientConfig:   &tls.Config{RootCAs: t.ca.Roots, ServerName: name},
		DialContext:       dial.DialContext,
		DisableKeepAlives: true,
	}}
	return o
}

// run looks at the instances every interval (or as soon as the last look
// ended, if it took longer) until ctx ends, and returns the looks.
func (o *fleetOpObserver) run(ctx context.Context, interval time.Duration) []FleetOpObservation {
	defer o.hc.CloseIdleConnections()
	var out []FleetOpObservation
	for {
		next := time.Now().Add(interval)
		pt := o.observe(ctx)
		if ctx.Err() != nil {
			// Cut short: its checks failed for that reason alone.
			return out
		}
		out = append(out, pt)
		select {
		case <-ctx.Done():
			return out
		case <-time.After(time.Until(next)):
		}
	}
}

// observe counts the ready node instances and reads each auth instance's
// request counter, all at once, and rewrites the routes file when an
// address moved.
func (o *fleetOpObserver) observe(ctx context.Context) FleetOpObservation {
	pt := FleetOpObservation{T: time.Since(o.start).Seconds(), ReadyNodes: -1, Auth: map[string]float64{}}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	sts, err := o.t.cloud.Status(sctx)
	cancel()
	if err != nil {
		return pt
	}
	o.writeRoutes(sts)
	var mu sync.Mutex
	var wg sync.WaitGroup
	pt.ReadyNodes = 0
	for _, s := range sts {
		if s.State != "running" || s.PrivateIP == "" {
			continue
		}
		switch s.Tags["wsdirect:role"] {
		case "node":
			wg.Add(1)
			go func() {
				defer wg.Done()
				ready, answered := checkReady(ctx, o.hc, "http://"+s.PrivateIP+"/readyz")
				mu.Lock()
				switch {
				case ready:
					pt.ReadyNodes++
				case !answered:
					pt.Unanswered++
				}
				mu.Unlock()
			}()
		case "auth":
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v, ok := authRequests(ctx, o.auth, "https://"+net.JoinHostPort(s.PrivateIP, o.authPort)); ok {
					mu.Lock()
					pt.Auth[s.ID] = v
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return pt
}

// writeRoutes replaces the routes file when the public-to-private mapping
// changed (a rename: the clients see a new file).
func (o *fleetOpObserver) writeRoutes(sts []localcloud.InstanceStatus) {
	m := map[string]string{}
	for _, s := range sts {
		if s.PublicIP != "" && s.PrivateIP != "" && s.State == "running" {
			m[s.PublicIP] = s.PrivateIP
		}
	}
	data, err := json.Marshal(m)
	if err != nil || bytes.Equal(data, o.routes) {
		return
	}
	tmp := o.t.routes + ".tmp"
	if os.WriteFile(tmp, data, 0o644) == nil && os.Rename(tmp, o.t.routes) == nil {
		o.routes = data
	}
}

// checkReady GETs u: ready is a 200; answered is false when the check
// timed out (an answer other than 200, or a refused connection, is a
// definite "not ready").
func checkReady(ctx context.Context, hc *http.Client, u string) (ready, answered bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, true
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ne net.Error
		return false, !(errors.As(err, &ne) && ne.Timeout())
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, true
}

// authRequests reads wsdirect_auth_requests_total from the auth instance
// at base (scrapeAuth).
func authRequests(ctx context.Context, hc *http.Client, base string) (float64, bool) {
	all, _ := scrapeAuth(ctx, hc, base)
	return all, all >= 0
}

// peakAuthPerSecond is the most requests all auth instances together
// served in any window of at most a second: per instance seen at both ends,
// the counter's increase.
func peakAuthPerSecond(series []FleetOpObservation) float64 {
	peak := 0.0
	for i := range series {
		for j := i + 1; j < len(series) && series[j].T-series[i].T <= 1.0+1e-9; j++ {
			d := 0.0
			for id, a := range series[i].Auth {
				if b, ok := series[j].Auth[id]; ok && b > a {
					d += b - a
				}
			}
			peak = max(peak, d)
		}
	}
	return peak
}

// peakOf is the largest increase of a counter within a second.
func peakOf(series []FleetOpSample, v func(FleetOpSample) float64) float64 {
	peak := 0.0
	for i := range series {
		for j := i + 1; j < len(series) && series[j].T-series[i].T <= 1.0+1e-9; j++ {
			peak = max(peak, v(series[j])-v(series[i]))
		}
	}
	return peak
}

// Drained is how many connections ended with the drain code.
func (r *FleetOpResult) Drained() int64 { return r.CloseCodes[strconv.Itoa(wire.CloseDraining)] }

// WriteTable prints the result as aligned lines.
func (r *FleetOpResult) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "operation          %s, %d → %d nodes (%s), %d clients over %d fleet(s)\n", r.Op, r.NodesBefore, r.NodesAfter, r.Path, r.Clients, r.Workers)
	if r.DrainRate > 0 || r.DrainDeadline > 0 {
		fmt.Fprintf(w, "node drain         %d clients/s, deadline %gs (0: the binary's)\n", r.DrainRate, r.DrainDeadline)
	}
	fmt.Fprintf(w, "first connects     %.2fs\n", r.ConnectSeconds)
	fmt.Fprintf(w, "before             %s\n", fmtCounts(r.Before))
	fmt.Fprintf(w, "after              %s\n", fmtCounts(r.After))
	fmt.Fprintf(w, "auth_url           %s → %s\n", r.AuthURLBefore, r.AuthURLAfter)
	fmt.Fprintf(w, "lost               %d (gave up: %d)\n", r.Lost, r.GaveUp)
	fmt.Fprintf(w, "without connection %d clients; longest gap each: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", r.Disconnected, r.GapP50Ms, r.GapP99Ms, r.GapMaxMs)
	fmt.Fprintf(w, "close codes        %s\n", fmtMap(r.CloseCodes))
	fmt.Fprintf(w, "ready nodes        %d to %d during the operation\n", r.MinReadyNodes, r.MaxReadyNodes)
	fmt.Fprintf(w, "peak per second    %.0f auth requests; %.0f connects\n", r.PeakAuthRate, r.PeakReconnectRate)
	fmt.Fprintf(w, "time               apply %.2fs; until every client was back %.2fs\n", r.ApplySeconds, r.TotalSeconds)
	fmt.Fprintf(w, "failed attempts    %s\n", fmtMap(r.FailedAttempts))
}

func fmtMap[V int64 | int](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
