package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
)

// CompareConfig describes a side-by-side run. Start from
// DefaultCompareConfig; Compare rejects invalid fields.
type CompareConfig struct {
	// Env describes the servers; Env.BinDir is required.
	Env EnvConfig
	// Paths to run, in order (DefaultCompareConfig: Paths; TLSPaths is the
	// TLS comparison; OldPaths put an older build next to the current
	// one). Ratios are to the first path, which must be direct, direct-tls,
	// direct-old or direct-tls-old.
	Paths []string
	// Conns is the number of connections per path, at least 1.
	Conns int
	// Rate is the target connect rate; 0 connects as fast as Concurrency
	// allows, which measures the path's full-flow connect rate.
	Rate float64
	// Concurrency bounds handshakes in flight; at least 1.
	Concurrency int
	// MsgRate is echoed messages per second per connection. Must be > 0:
	// the CPU figures are per message.
	MsgRate float64
	// MsgSize in bytes, at least 8.
	MsgSize int
	// Duration of the message phase. Must be > 0.
	Duration time.Duration
	// Workers is the number of client processes; 1 runs the clients in this
	// process, 0 means one per 8,000 connections.
	Workers int
	// WorkerExe is a binary with loadtest's "worker" subcommand
	// (wsdirect-bench); required when Workers > 1.
	WorkerExe string
	// ClassicKeyExchange makes the clients of the TLS paths offer only
	// classical key shares (X25519), so that every path runs the same key
	// exchange: HAProxy 2.6 on OpenSSL 3.0 has no post-quantum one, while Go
	// clients and nodes agree on X25519MLKEM768 by default. false: Go's
	// default.
	ClassicKeyExchange bool
	// Warmup runs the first path once more before the measured runs, with
	// a message phase of at most warmupMessages, and discards it. With the
	// clients in this process (Workers 1) the first path measured would
	// otherwise pay alone for growing the process's heap and goroutine
	// stacks to 8,000 clients: its client process took 1.5x the CPU per
	// connect of the same path run again (docs/benchmarks.md).
	Warmup bool
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
}

// warmupMessages bounds the warm-up's message phase: the connects are what
// grow the client process.
const warmupMessages = 2 * time.Second

// DefaultCompareConfig is `make bench-compare`; the caller sets Env.BinDir
// (and WorkerExe for more than 8,000 connections).
func DefaultCompareConfig() CompareConfig {
	return CompareConfig{
		Env:   DefaultEnvConfig(),
		Paths: append([]string(nil), Paths...),
		// 8,000: one HAProxy process holds at most about 9,500 under the
		// 20,000-file limit.
		Conns: 8_000,
		// 256 handshakes in flight, as loadtest.DefaultConfig.
		Concurrency: 256,
		// One message a second per connection: 8,000 echoes a second in
		// all, a chat-like load.
		MsgRate: 1,
		MsgSize: 64,
		// 20 s: 160,000 round trips at the defaults.
		Duration: 20 * time.Second,
		// So that the first path's figures are not the only ones to
		// include the client process's growth.
		Warmup: true,
	}
}

// validate reports the first problem with c (the servers are checked by
// StartEnv).
func (c *CompareConfig) validate() error {
	if len(c.Paths) == 0 {
		return errors.New("benchcompare: Paths: at least one is required")
	}
	for _, p := range c.Paths {
		if !knownPath(p) {
			return fmt.Errorf("benchcompare: Paths: unknown path %q (want from %v, %v or %v)", p, Paths, TLSPaths, OldPaths)
		}
		if isOld(p) && c.Env.OldBinDir == "" {
			return fmt.Errorf("benchcompare: Paths: %s needs Env.OldBinDir", p)
		}
	}
	switch b := c.Paths[0]; {
	case !isBaseline(b):
		return errors.New("benchcompare: Paths: the first path is the baseline of every ratio; make it direct, direct-tls, direct-old or direct-tls-old")
	case c.Conns < 1:
		return fmt.Errorf("benchcompare: Conns must be at least 1, got %d", c.Conns)
	case c.Rate < 0:
		return fmt.Errorf("benchcompare: Rate must not be negative, got %g", c.Rate)
	case c.Concurrency < 1:
		return fmt.Errorf("benchcompare: Concurrency must be at least 1, got %d", c.Concurrency)
	case !(c.MsgRate > 0):
		return fmt.Errorf("benchcompare: MsgRate must be > 0, got %g", c.MsgRate)
	case c.MsgSize < 8:
		return fmt.Errorf("benchcompare: MsgSize must be at least 8, got %d", c.MsgSize)
	case c.Duration <= 0:
		return fmt.Errorf("benchcompare: Duration must be > 0, got %s", c.Duration)
	case c.Workers < 0:
		return fmt.Errorf("benchcompare: Workers must not be negative, got %d", c.Workers)
	}
	if workers := c.workers(); workers > 1 && c.WorkerExe == "" {
		return fmt.Errorf("benchcompare: %d workers need WorkerExe (the wsdirect-bench binary)", workers)
	}
	return nil
}

// workers is Workers, or for 0 one per 8,000 connections.
func (c *CompareConfig) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return (c.Conns + 7_999) / 8_000
}

// PathResult is what one path measured.
type PathResult struct {
	Path   string           `json:"path"`
	Report *loadtest.Report `json:"report"`
	// ConnectRate is full-flow connections per second.
	ConnectRate float64 `json:"connect_rate"`
	// Handshake is token request plus WebSocket upgrade; RTT is one
	// echoed message, both in milliseconds.
	HandshakeP50 float64 `json:"handshake_p50_ms"`
	HandshakeP99 float64 `json:"handshake_p99_ms"`
	RTTP50       float64 `json:"rtt_p50_ms"`
	RTTP99       float64 `json:"rtt_p99_ms"`
	// Messages is the number of echoed messages received in the message
	// phase; CPUSeconds the whole machine's busy CPU over that phase, from
	// /proc/stat. That figure is tick-sampled, and for a workload of short
	// wake-ups like an echo it reads low (here below the processes' own
	// times, which the kernel keeps precisely), so the table leads with
	// ProcCPUPer100k.
	Messages   int64   `json:"messages"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPer100k is CPUSeconds scaled to 100,000 round trips.
	CPUPer100k float64 `json:"cpu_seconds_per_100k_msgs"`
	// ProcCPUPer100k is servers plus client per 100,000 round trips, or
	// servers alone when the client ran in worker processes.
	ProcCPUPer100k float64 `json:"proc_cpu_seconds_per_100k_msgs"`
	// ServerCPUSeconds is the CPU time of the server processes alone
	// (nodes, auth, haproxy) over the same phase, and ServerCPUPer100k
	// that per 100,000 round trips: on a shared machine the whole-system
	// figure also counts everything else running.
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	ServerCPUPer100k float64 `json:"server_cpu_seconds_per_100k_msgs"`
	// ClientCPUSeconds is the client's CPU time over the phase when the
	// client runs in this process (one worker), else 0.
	ClientCPUSeconds float64 `json:"client_cpu_seconds,omitempty"`
	ClientCPUPer100k float64 `json:"client_cpu_seconds_per_100k_msgs,omitempty"`
	// ConnectCPU is the CPU spent over the connect phase per successful
	// connect, split by process.
	ConnectCPU ConnectCPU `json:"connect_cpu_us"`
	// NodeConns is the per-node connection count auth saw at the busiest
	// moment (the only view of the spread when HAProxy picks the nodes).
	NodeConns map[string]int `json:"node_conns"`
	// Procs is every server process's peak RSS (VmHWM).
	Procs []ProcMem `json:"procs"`
	// NodesPeakRSS, AuthPeakRSS and HAProxyPeakRSS sum Procs by role.
	NodesPeakRSS   int64 `json:"nodes_peak_rss_bytes"`
	AuthPeakRSS    int64 `json:"auth_peak_rss_bytes"`
	HAProxyPeakRSS int64 `json:"haproxy_peak_rss_bytes"`
}

// ConnectCPU is CPU microseconds per connect over the connect phase (token
// request, TLS handshakes where there are some, upgrade). Processes is the
// sum of the server processes and the client process: the whole flow's
// cost. Servers is the nodes, auth and HAProxy: what the operator runs and
// pays for (the same wsdirect-auth mints the token on every path). Machine
// is the whole machine's busy time from /proc/stat (tick-sampled; it also
// holds whatever else ran).
type ConnectCPU struct {
	Nodes     float64 `json:"nodes"`
	Auth      float64 `json:"auth"`
	HAProxy   float64 `json:"haproxy"`
	Client    float64 `json:"client"`
	Servers   float64 `json:"servers"`
	Processes float64 `json:"processes"`
	Machine   float64 `json:"machine"`
}

// CompareResult is a whole side-by-side run.
type CompareResult struct {
	// ClassicKeyExchange: see CompareConfig.
	ClassicKeyExchange bool          `json:"classic_key_exchange,omitempty"`
	Conns              int           `json:"conns"`
	MsgRate            float64       `json:"msg_rate_per_conn"`
	Duration           time.Duration `json:"message_phase_ns"`
	Workers            int           `json:"workers"`
	CPUs               int           `json:"cpus"`
	Paths              []PathResult  `json:"paths"`
}

// Compare runs the workload against each path in turn, each on a fresh set
// of processes.
func Compare(ctx context.Context, cfg CompareConfig) (*CompareResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Env.validate(); err != nil {
		return nil, err
	}
	cfg.Workers = cfg.workers()
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Env.MaxConns < cfg.Conns {
		// Any node may end up with every connection (HAProxy leastconn
		// ties, a skewed pick); the cap must not be what is measured.
		cfg.Env.MaxConns = min(cfg.Conns, 19_000)
	}
	res := &CompareResult{ClassicKeyExchange: cfg.ClassicKeyExchange, Conns: cfg.Conns, MsgRate: cfg.MsgRate, Duration: cfg.Duration, Workers: cfg.Workers, CPUs: runtime.NumCPU()}
	if cfg.Warmup {
		wc := cfg
		wc.Duration = min(cfg.Duration, warmupMessages)
		fmt.Fprintf(cfg.Progress, "== warm-up (not measured): %s, %d connections\n", cfg.Paths[0], cfg.Conns)
		if _, err := comparePath(ctx, cfg.Paths[0], wc); err != nil {
			return res, fmt.Errorf("warm-up on %s: %w", cfg.Paths[0], err)
		}
	}
	for _, path := range cfg.Paths {
		fmt.Fprintf(cfg.Progress, "== %s: %d connections, then %.3g msg/s each for %v\n", path, cfg.Conns, cfg.MsgRate, cfg.Duration)
		pr, err := comparePath(ctx, path, cfg)
		if err != nil {
			return res, fmt.Errorf("%s: %w", path, err)
		}
		res.Paths = append(res.Paths, *pr)
	}
	return res, nil
}

func comparePath(ctx context.Context, path string, cfg CompareConfig) (*PathResult, error) {
	env, err := StartEnv(ctx, path, cfg.Env)
	if err != nil {
		return nil, err
	}
	defer env.Stop()

	lc := loadtest.DefaultConfig()
	lc.AuthURL, lc.Username, lc.Password = env.AuthURL(), env.Cluster.Username(), env.Cluster.Password()
	lc.Conns, lc.Rate, lc.Concurrency = cfg.Conns, cfg.Rate, cfg.Concurrency
	lc.MsgRate, lc.MsgSize, lc.Duration = cfg.MsgRate, cfg.MsgSize, cfg.Duration
	lc.CAFile = env.CAFile()
	lc.TLSResume = path == PathDirectTLSResume
	// Over TLS every connect is a new client: its own TLS handshake with
	// auth, not a kept-alive connection of the load generator's.
	lc.FreshAuthConns = isTLS(path)
	lc.ClassicKeyExchange = cfg.ClassicKeyExchange && isTLS(path)
	var pids []int
	procs := env.PeakRSS()
	for _, p := range procs {
		pids = append(pids, p.PID)
	}
	// With one client process, it is this one: watch it last.
	clientInProcess := cfg.Workers <= 1
	if clientInProcess {
		pids = append(pids, os.Getpid())
	}
	sampler, err := startCPUSampler(100*time.Millisecond, pids...)
	if err != nil {
		return nil, err
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	peak := pollNodeConns(pollCtx, env.Cluster)

	var rep *loadtest.Report
	if cfg.Workers > 1 {
		rep, err = loadtest.RunWorkers(ctx, lc, cfg.Workers, cfg.WorkerExe, cfg.Progress)
	} else {
		rep, err = loadtest.Run(ctx, lc, cfg.Progress)
	}
	sampler.Stop()
	stopPoll()
	nodeConns := peak()
	if err != nil {
		return nil, err
	}
	if rep.Connected == 0 {
		return nil, fmt.Errorf("no connection succeeded (errors: %v)", rep.Errors)
	}
	pr := &PathResult{
		Path:         path,
		Report:       rep,
		ConnectRate:  rep.ConnectRate,
		HandshakeP50: msf(rep.Handshake.Quantile(0.50)),
		HandshakeP99: msf(rep.Handshake.Quantile(0.99)),
		RTTP50:       msf(rep.RTT.Quantile(0.50)),
		RTTP99:       msf(rep.RTT.Quantile(0.99)),
		Messages:     rep.MsgsReceived,
		NodeConns:    nodeConns,
		Procs:        env.PeakRSS(),
	}
	if rep.Connected > 0 {
		cpu, each, _, err := sampler.Between(rep.ConnectStart, rep.ConnectEnd)
		if err != nil {
			return nil, fmt.Errorf("connect phase: %w", err)
		}
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(rep.Connected) }
		cc := &pr.ConnectCPU
		for k, p := range procs {
			v := us(each[k])
			switch {
			case p.Name == "haproxy":
				cc.HAProxy += v
			case strings.HasPrefix(p.Name, "auth"):
				cc.Auth += v
			default:
				cc.Nodes += v
			}
			cc.Servers += v
		}
		if clientInProcess {
			cc.Client = us(each[len(each)-1])
		}
		cc.Processes = cc.Servers + cc.Client
		cc.Machine = us(cpu)
	}
	if rep.MessageSeconds > 0 {
		// Workers start messaging when their own connections are up; the
		// last connect is when all of them are messaging.
		from := rep.ConnectEnd
		to := from.Add(time.Duration(rep.MessageSeconds * float64(time.Second)))
		cpu, each, _, err := sampler.Between(from, to)
		if err != nil {
			return nil, err
		}
		if clientInProcess {
			pr.ClientCPUSeconds = each[len(each)-1].Seconds()
			each = each[:len(each)-1]
		}
		var servers time.Duration
		for _, d := range each {
			servers += d
		}
		pr.CPUSeconds = cpu.Seconds()
		pr.ServerCPUSeconds = servers.Seconds()
		if pr.Messages > 0 {
			per100k := func(sec float64) float64 { return sec / float64(pr.Messages) * 100_000 }
			pr.CPUPer100k = per100k(pr.CPUSeconds)
			pr.ServerCPUPer100k = per100k(pr.ServerCPUSeconds)
			pr.ClientCPUPer100k = per100k(pr.ClientCPUSeconds)
			pr.ProcCPUPer100k = per100k(pr.ServerCPUSeconds + pr.ClientCPUSeconds)
		}
	}
	for _, p := range pr.Procs {
		switch {
		case p.Name == "haproxy":
			pr.HAProxyPeakRSS += p.PeakRSS
		case len(p.Name) > 4 && p.Name[:4] == "auth":
			pr.AuthPeakRSS += p.PeakRSS
		default:
			pr.NodesPeakRSS += p.PeakRSS
		}
	}
	fmt.Fprintf(cfg.Progress, "   %d/%d connected at %.0f/s, %d messages echoed, %d dropped, errors %v\n",
		rep.Connected, rep.Target, rep.ConnectRate, rep.MsgsReceived, rep.Dropped, rep.Errors)
	for k, v := range rep.ErrorSamples {
		fmt.Fprintf(cfg.Progress, "   first %s: %s\n", k, v)
	}
	return pr, nil
}

// pollNodeConns asks auth for the per-node counts every 250ms until ctx
// ends; the returned func gives the snapshot with the most connections.
func pollNodeConns(ctx context.Context, cl *localcluster.Cluster) func() map[string]int {
	var mu sync.Mutex
	best, bestTotal := map[string]int{}, -1
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			nodes, err := cl.NodeStatuses(qctx, 0)
			cancel()
			if err == nil {
				snap, total := map[string]int{}, 0
				for _, n := range nodes {
					snap[n.ID] = n.Connections
					total += n.Connections
				}
				mu.Lock()
				if total > bestTotal {
					best, bestTotal = snap, total
				}
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return func() map[string]int {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return best
	}
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Direct returns the baseline: the first path when it is direct or
// direct-tls, else nil.
func (r *CompareResult) Direct() *PathResult {
	if len(r.Paths) > 0 && isBaseline(r.Paths[0].Path) {
		return &r.Paths[0]
	}
	return nil
}

// isBaseline reports whether p may be the first path, the baseline.
func isBaseline(p string) bool {
	return p == PathDirect || p == PathDirectTLS || p == PathDirectOld || p == PathDirectTLSOld
}

// WriteTable prints one row per figure and, for each path, its value and
// its ratio to the baseline, the first path (value / baseline: above 1
// means more connections per second, more latency, more CPU or more
// memory).
func (r *CompareResult) WriteTable(w io.Writer) {
	base := r.Direct()
	fmt.Fprintf(w, "%d connections per path, %.3g msg/s per connection for %v, %d client process(es), %d CPUs\n",
		r.Conns, r.MsgRate, r.Duration, r.Workers, r.CPUs)
	if r.ClassicKeyExchange {
		fmt.Fprintln(w, "TLS clients offer classical key shares only (X25519)")
	}
	fmt.Fprintln(w)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	rows := []figure{
		{"connected", func(p *PathResult) float64 { return float64(p.Report.Connected) }, ""},
		{"connect rate", func(p *PathResult) float64 { return p.ConnectRate }, "/s"},
		{"handshake p50", func(p *PathResult) float64 { return p.HandshakeP50 }, "ms"},
		{"handshake p99", func(p *PathResult) float64 { return p.HandshakeP99 }, "ms"},
		{"CPU us / connect", func(p *PathResult) float64 { return p.ConnectCPU.Processes }, "us"},
		{"  servers (nodes + auth + haproxy)", func(p *PathResult) float64 { return p.ConnectCPU.Servers }, "us"},
		{"  nodes", func(p *PathResult) float64 { return p.ConnectCPU.Nodes }, "us"},
		{"  auth", func(p *PathResult) float64 { return p.ConnectCPU.Auth }, "us"},
		{"  haproxy", func(p *PathResult) float64 { return p.ConnectCPU.HAProxy }, "us"},
		{"  client process", func(p *PathResult) float64 { return p.ConnectCPU.Client }, "us"},
		{"  machine, sampled", func(p *PathResult) float64 { return p.ConnectCPU.Machine }, "us"},
		{"node TLS resumed", func(p *PathResult) float64 { return float64(p.Report.NodeTLSResumed) }, ""},
		{"  auth/token p50", func(p *PathResult) float64 { return msf(p.Report.Auth.Quantile(0.5)) }, "ms"},
		{"  upgrade p50", func(p *PathResult) float64 { return msf(p.Report.Upgrade.Quantile(0.5)) }, "ms"},
		{"  upgrade p99", func(p *PathResult) float64 { return msf(p.Report.Upgrade.Quantile(0.99)) }, "ms"},
		{"message RTT p50", func(p *PathResult) float64 { return p.RTTP50 }, "ms"},
		{"message RTT p99", func(p *PathResult) float64 { return p.RTTP99 }, "ms"},
		{"messages echoed", func(p *PathResult) float64 { return float64(p.Messages) }, ""},
		{"CPU s / 100k msgs", func(p *PathResult) float64 { return p.ProcCPUPer100k }, "s"},
		{"  servers", func(p *PathResult) float64 { return p.ServerCPUPer100k }, "s"},
		{"  client process", func(p *PathResult) float64 { return p.ClientCPUPer100k }, "s"},
		{"  machine, sampled", func(p *PathResult) float64 { return p.CPUPer100k }, "s"},
		{"peak RSS nodes", func(p *PathResult) float64 { return mib(p.NodesPeakRSS) }, "MiB"},
		{"peak RSS auth", func(p *PathResult) float64 { return mib(p.AuthPeakRSS) }, "MiB"},
		{"peak RSS haproxy", func(p *PathResult) float64 { return mib(p.HAProxyPeakRSS) }, "MiB"},
		{"node max/mean", func(p *PathResult) float64 { return loadtest.Balance(p.NodeConns) }, ""},
	}
	baseName := ""
	if base != nil {
		baseName = base.Path
	}
	fmt.Fprintf(w, "%-20s", "figure")
	for i, p := range r.Paths {
		if i == 0 {
			fmt.Fprintf(w, " %17s", p.Path)
		} else {
			fmt.Fprintf(w, " %17s %11s", p.Path, "x "+baseName)
		}
	}
	fmt.Fprintln(w)
	for _, rw := range rows {
		fmt.Fprintf(w, "%-20s", rw.name)
		for i := range r.Paths {
			p := &r.Paths[i]
			v := rw.get(p)
			fmt.Fprintf(w, " %17s", fmtVal(v, rw.unit))
			if i > 0 {
				ratio := "-"
				if base != nil {
					if b := rw.get(base); b != 0 {
						ratio = fmt.Sprintf("%.2f", v/b)
					}
				}
				fmt.Fprintf(w, " %11s", ratio)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\npeak RSS per process:")
	for _, p := range r.Paths {
		procs := append([]ProcMem(nil), p.Procs...)
		sort.Slice(procs, func(i, j int) bool { return procs[i].Name < procs[j].Name })
		fmt.Fprintf(w, "  %-13s", p.Path)
		for _, m := range procs {
			fmt.Fprintf(w, " %s %.1f MiB;", m.Name, mib(m.PeakRSS))
		}
		fmt.Fprintln(w)
	}
	r.writeRepeats(w)
	fmt.Fprintln(w, "\nconnections per node (auth's view at the busiest moment):")
	for _, p := range r.Paths {
		fmt.Fprintf(w, "  %-13s", p.Path)
		for _, k := range sortedKeys(p.NodeConns) {
			fmt.Fprintf(w, " %s %d;", k, p.NodeConns[k])
		}
		fmt.Fprintln(w)
	}
}

// figure is one row of a table: a name, how to get it from a path's
// result, and its unit.
type figure struct {
	name string
	get  func(*PathResult) float64
	unit string
}

// writeRepeats summarises paths that ran more than once (for example
// -paths direct-old,direct,direct,direct-old,...): on a shared machine one
// run's figures move by 10 % or more from the machine's phases, so a
// comparison rests on several runs, interleaved, of each. It prints each
// path's median and mean of the message phase's figures, the ratio of its
// medians to the first path's, and how often one of its runs is above one
// of the first path's (over every pair of runs, ties counting half: about
// 50 % when the two do not differ, the Mann-Whitney U over the pairs).
func (r *CompareResult) writeRepeats(w io.Writer) {
	var order []string
	runs := map[string][]*PathResult{}
	for i := range r.Paths {
		p := &r.Paths[i]
		if _, ok := runs[p.Path]; !ok {
			order = append(order, p.Path)
		}
		runs[p.Path] = append(runs[p.Path], p)
	}
	if len(order) == len(r.Paths) {
		return // nothing ran twice
	}
	figs := []figure{
		{"servers' CPU s / 100k msgs", func(p *PathResult) float64 { return p.ServerCPUPer100k }, "s"},
		{"message RTT p50", func(p *PathResult) float64 { return p.RTTP50 }, "ms"},
		{"message RTT p99", func(p *PathResult) float64 { return p.RTTP99 }, "ms"},
	}
	fmt.Fprintln(w, "\nrepeated paths: median (mean) over their runs; ratio of medians to "+order[0])
	for _, f := range figs {
		fmt.Fprintf(w, "  %s\n", f.name)
		var base float64
		var baseVals []float64
		for i, path := range order {
			vals := make([]float64, 0, len(runs[path]))
			for _, p := range runs[path] {
				vals = append(vals, f.get(p))
			}
			med, mean := medianMean(vals)
			ratio := ""
			if i == 0 {
				base, baseVals = med, vals
			} else if base != 0 {
				ratio = fmt.Sprintf("  x %.2f, above in %.0f %% of run pairs", med/base, 100*above(vals, baseVals))
			}
			fmt.Fprintf(w, "    %-15s %d runs  %s (%s)%s\n", path, len(vals), fmtVal(med, f.unit), fmtVal(mean, f.unit), ratio)
		}
	}
}

// above returns the share of pairs (x from xs, y from ys) with x > y, ties
// counting half.
func above(xs, ys []float64) float64 {
	var u float64
	for _, x := range xs {
		for _, y := range ys {
			switch {
			case x > y:
				u++
			case x == y:
				u += 0.5
			}
		}
	}
	return u / float64(len(xs)*len(ys))
}

// medianMean returns the median and the mean of vs (not empty).
func medianMean(vs []float64) (median, mean float64) {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	for _, v := range s {
		mean += v
	}
	mean /= float64(len(s))
	if n := len(s); n%2 == 1 {
		median = s[n/2]
	} else {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, mean
}

func fmtVal(v float64, unit string) string {
	switch {
	case unit == "":
		if v == float64(int64(v)) {
			return fmt.Sprintf("%d", int64(v))
		}
		return fmt.Sprintf("%.3f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	default:
		return fmt.Sprintf("%.3g %s", v, unit)
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
