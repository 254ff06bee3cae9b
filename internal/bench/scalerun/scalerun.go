package scalerun

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// Run starts the cluster, opens and holds cfg.Conns connections through
// auth with cfg.Workers client processes, samples every process while they
// are held, stops the cluster and returns the report. A run that does not
// reach cfg.Conns still returns its report (with what limited it) and an
// error saying so.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	// The workers' output, the cluster's log lines and the samples all go
	// to progress from their own goroutines.
	progress = &lockedWriter{w: progress}
	logf := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }

	rep := &Report{
		Nodes: cfg.Nodes, Auths: cfg.Auths, Workers: cfg.Workers, Target: cfg.Conns,
		MaxConns: cfg.MaxConns, Rate: cfg.Rate, Concurrency: cfg.Concurrency,
		SourceIPs: len(cfg.SourceIPs), HoldSeconds: cfg.Hold.Seconds(), Start: time.Now(),
	}
	host, err := ReadHostLimits()
	if err != nil {
		return nil, err
	}
	rep.Host = host
	if rep.NetStart, err = ReadNetCounters(); err != nil {
		return nil, err
	}

	cc := localcluster.DefaultConfig()
	cc.BinDir, cc.Nodes, cc.Auths, cc.MaxConns = cfg.BinDir, cfg.Nodes, cfg.Auths, cfg.MaxConns
	cc.LogLevel, cc.KeepDir, cc.Logf = cfg.LogLevel, cfg.KeepDir, logf
	c, err := localcluster.Start(ctx, cc)
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	if cfg.KeepDir {
		rep.ClusterDir = c.Dir()
	}
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	s := newSampler(c)
	if err := s.openMetrics(ctx); err != nil {
		return nil, err
	}
	if err := s.baseline(); err != nil {
		return nil, err
	}
	logf("cluster ready: %d nodes, %d auth; opening %d connections with %d workers at %g/s",
		cfg.Nodes, cfg.Auths, cfg.Conns, cfg.Workers, cfg.Rate)

	lc := loadtest.DefaultConfig()
	lc.AuthURL, lc.Username, lc.Password = c.AuthURL(), c.Username(), c.Password()
	lc.Conns, lc.Rate, lc.Concurrency = cfg.Conns, cfg.Rate, cfg.Concurrency
	lc.SourceIPs, lc.HandshakeTimeout, lc.Hold = cfg.SourceIPs, cfg.HandshakeTimeout, cfg.Hold
	type result struct {
		rep *loadtest.Report
		err error
	}
	done := make(chan result, 1)
	loadStart := time.Now()
	go func() {
		r, err := loadtest.RunWorkers(ctx, lc, cfg.Workers, cfg.WorkerExe, progress)
		done <- result{r, err}
	}()

	tick := time.NewTicker(cfg.SampleInterval)
	defer tick.Stop()
	var res result
sampling:
	for {
		select {
		case res = <-done:
			break sampling
		case <-tick.C:
			smp := s.sample(ctx, loadStart)
			logf("  t=%4.0fs held %7d (auth lists %7d)  nodes %s  clients %s (%d workers, %d fds)  tcp mem %d pages",
				smp.Elapsed, smp.Held, smp.AuthHeld, mib(smp.NodeRSS), mib(smp.ClientRSS), smp.WorkerProcs, smp.ClientFDs, smp.Net.TCPMemPages)
		}
	}
	rep.End = time.Now()
	rep.Load = res.rep
	s.finish(rep)
	if rep.Load == nil {
		return rep, fmt.Errorf("scalerun: workers: %w", res.err)
	}
	rep.explain()
	if res.err != nil {
		return rep, fmt.Errorf("scalerun: workers: %w", res.err)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if rep.Held < cfg.Conns {
		return rep, fmt.Errorf("scalerun: held %d of %d connections", rep.Held, cfg.Conns)
	}
	return rep, nil
}

// proc is what the sampler tracks of one process.
type proc struct {
	fig    ProcFigures
	seen   bool
	isNode bool
}

type sampler struct {
	c        *localcluster.Cluster
	http     *http.Client
	mu       sync.Mutex
	nodes    []*proc
	auths    []*proc
	self     *proc
	workers  map[int]*proc
	cluster  map[int]bool // pids of cluster processes, not workers
	samples  []Sample
	best     int // index into samples of the sample at the peak, -1 if none
	bestNode map[string]nodeSample
	netPeak  NetCounters
	// maxClientFDs is the most descriptors the workers held together.
	maxClientFDs int
	errs         []string
}

type nodeSample struct {
	conns, authConns, capacity, fds int
	rss                             int64
}

func newSampler(c *localcluster.Cluster) *sampler {
	s := &sampler{c: c, workers: map[int]*proc{}, cluster: map[int]bool{}, best: -1, self: &proc{}}
	// One kept-alive connection per node for its /metrics: it is open from
	// the baseline on, so it counts among the node's own descriptors
	// rather than taking one from its clients at the peak.
	s.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Hour, DisableCompression: true,
	}}
	s.self.fig.Name = "bench (this process)"
	s.self.fig.PID = os.Getpid()
	for _, p := range c.Nodes {
		s.nodes = append(s.nodes, &proc{fig: ProcFigures{Name: p.Name, PID: p.PID()}, isNode: true})
		s.cluster[p.PID()] = true
	}
	for _, p := range c.Auths {
		s.auths = append(s.auths, &proc{fig: ProcFigures{Name: p.Name, PID: p.PID()}})
		s.cluster[p.PID()] = true
	}
	return s
}

func (s *sampler) all() []*proc {
	return append(append([]*proc{s.self}, s.auths...), s.nodes...)
}

// baseline reads every cluster process's limit, descriptors and memory
// before any client connects.
func (s *sampler) baseline() error {
	for _, p := range s.all() {
		pid := p.fig.PID
		if p == s.self {
			pid = 0
		}
		lim, err := procNoFile(pid)
		if err != nil {
			return fmt.Errorf("scalerun: %s limits: %w", p.fig.Name, err)
		}
		fds, err := procFDs(pid)
		if err != nil {
			return fmt.Errorf("scalerun: %s fds: %w", p.fig.Name, err)
		}
		rss, err := localcluster.ProcRSS(pid)
		if err != nil {
			return fmt.Errorf("scalerun: %s rss: %w", p.fig.Name, err)
		}
		p.fig.NoFile, p.fig.BaseFDs, p.fig.PeakFDs, p.fig.BaseRSS, p.fig.PeakRSS = lim, fds, fds, rss, rss
		p.fig.FDs, p.fig.RSS = fds, rss
		p.seen = true
	}
	return nil
}

// openMetrics opens the kept-alive /metrics connection to every node before
// the baseline, and checks that the gauge is there.
func (s *sampler) openMetrics(ctx context.Context) error {
	for _, p := range s.c.Nodes {
		if _, err := s.nodeConns(ctx, p.HTTPAddr); err != nil {
			return fmt.Errorf("scalerun: %s: %w", p.Name, err)
		}
	}
	return nil
}

// nodeConns reads a node's own connection gauge from its /metrics: unlike
// auth's view it does not depend on gossip, which lags and, on a starved
// machine, marks nodes suspect.
func (s *sampler) nodeConns(ctx context.Context, addr string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	res, err := s.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return 0, err
	}
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	return parseGauge(string(data), connGauge)
}

// connGauge is the node's open-connections gauge.
const connGauge = "wsdirect_node_connections"

// parseGauge finds an unlabelled sample of metric name in Prometheus text
// exposition format.
func parseGauge(text, name string) (int, error) {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		return int(v), nil
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// read samples one process; it returns false if the process is gone.
func (s *sampler) read(p *proc, pid int) (fds int, rss int64, ok bool) {
	var err1, err2 error
	fds, err1 = procFDs(pid)
	rss, err2 = localcluster.ProcRSS(pid)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	p.fig.PeakFDs = max(p.fig.PeakFDs, fds)
	p.fig.PeakRSS = max(p.fig.PeakRSS, rss)
	return fds, rss, true
}

func (s *sampler) sample(ctx context.Context, start time.Time) Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	smp := Sample{Elapsed: time.Since(start).Seconds()}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	statuses, err := s.c.NodeStatuses(sctx, 0)
	cancel()
	if err != nil {
		s.errs = append(s.errs, fmt.Sprintf("t=%.0fs: GET %s: %v", smp.Elapsed, wire.NodesPath, err))
	}
	byName := map[string]wire.NodeStatus{}
	for _, st := range statuses {
		byName[st.ID] = st
		smp.AuthHeld += st.Connections
	}
	nodes := map[string]nodeSample{}
	for i, p := range s.nodes {
		n, err := s.nodeConns(ctx, s.c.Nodes[i].HTTPAddr)
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("t=%.0fs: %s: %v", smp.Elapsed, p.fig.Name, err))
		}
		fds, rss, ok := s.read(p, p.fig.PID)
		if !ok {
			continue
		}
		st := byName[p.fig.Name]
		nodes[p.fig.Name] = nodeSample{conns: n, authConns: st.Connections, capacity: st.Cap, fds: fds, rss: rss}
		smp.Held += n
		smp.NodeRSS += rss
	}
	type procSample struct {
		fds int
		rss int64
		ok  bool
	}
	auths := make([]procSample, len(s.auths))
	for i, p := range s.auths {
		auths[i].fds, auths[i].rss, auths[i].ok = s.read(p, p.fig.PID)
	}
	s.read(s.self, 0)
	pids, _ := childPIDs(os.Getpid())
	for _, pid := range pids {
		if s.cluster[pid] {
			continue
		}
		w := s.workers[pid]
		if w == nil {
			lim, err := procNoFile(pid)
			if err != nil {
				continue
			}
			w = &proc{fig: ProcFigures{Name: fmt.Sprintf("worker pid %d", pid), PID: pid, NoFile: lim}}
			s.workers[pid] = w
		}
		fds, rss, ok := s.read(w, pid)
		if !ok {
			continue
		}
		if !w.seen {
			w.seen = true
			w.fig.BaseFDs, w.fig.BaseRSS = fds, rss
		}
		w.fig.FDs, w.fig.RSS = fds, rss
		smp.WorkerProcs++
		smp.ClientRSS += rss
		smp.ClientFDs += fds
	}
	if nc, err := ReadNetCounters(); err == nil {
		smp.Net = nc
		s.netPeak = peakCounters(s.netPeak, nc)
	}
	s.samples = append(s.samples, smp)
	// The latest sample at the peak: memory there has had the longest to
	// settle. Auth's counts lag by a gossip round, so a sample taken while
	// workers already close their connections (fewer client descriptors)
	// does not count as the peak.
	s.maxClientFDs = max(s.maxClientFDs, smp.ClientFDs)
	if s.best < 0 || (smp.Held >= s.samples[s.best].Held && smp.ClientFDs*100 >= s.maxClientFDs*99) {
		s.best = len(s.samples) - 1
		s.bestNode = nodes
		for _, p := range s.nodes {
			if ns, ok := nodes[p.fig.Name]; ok {
				p.fig.FDs, p.fig.RSS = ns.fds, ns.rss
			}
		}
		for i, p := range s.auths {
			if a := auths[i]; a.ok {
				p.fig.FDs, p.fig.RSS = a.fds, a.rss
			}
		}
	}
	return smp
}

func peakCounters(a, b NetCounters) NetCounters {
	a.ListenOverflows = max(a.ListenOverflows, b.ListenOverflows)
	a.ListenDrops = max(a.ListenDrops, b.ListenDrops)
	a.TCPInUse = max(a.TCPInUse, b.TCPInUse)
	a.TCPTimeWait = max(a.TCPTimeWait, b.TCPTimeWait)
	a.TCPMemPages = max(a.TCPMemPages, b.TCPMemPages)
	a.OpenFiles = max(a.OpenFiles, b.OpenFiles)
	if a.MemAvailable == 0 || (b.MemAvailable > 0 && b.MemAvailable < a.MemAvailable) {
		a.MemAvailable = b.MemAvailable // the lowest, for memory
	}
	return a
}

// finish copies the sampled figures into rep.
func (s *sampler) finish(rep *Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nc, err := ReadNetCounters(); err == nil {
		rep.NetEnd = nc
		s.netPeak = peakCounters(s.netPeak, nc)
	}
	rep.NetPeak = s.netPeak
	rep.Samples = s.samples
	rep.SampleErrors = s.errs
	rep.Self = s.self.fig
	for _, p := range s.auths {
		rep.AuthProcs = append(rep.AuthProcs, p.fig)
	}
	for _, w := range s.workers {
		rep.WorkerProcs = append(rep.WorkerProcs, w.fig)
	}
	sortProcs(rep.WorkerProcs)
	if s.best < 0 {
		for _, p := range s.nodes {
			rep.NodeFigures = append(rep.NodeFigures, NodeFigures{ProcFigures: p.fig, FDCeiling: int(p.fig.NoFile.Soft) - p.fig.BaseFDs})
		}
		return
	}
	best := s.samples[s.best]
	rep.Held, rep.HeldAt, rep.AuthHeld = best.Held, best.Elapsed, best.AuthHeld
	rep.ClientRSSAtPeak = best.ClientRSS
	if best.Held > 0 {
		rep.ClientBytesPerConn = float64(best.ClientRSS) / float64(best.Held)
	}
	var deltaSum int64
	var connSum int
	for _, p := range s.nodes {
		ns := s.bestNode[p.fig.Name]
		nf := NodeFigures{
			ProcFigures: p.fig,
			Connections: ns.conns,
			AuthView:    ns.authConns,
			Cap:         cmp.Or(ns.capacity, rep.MaxConns),
			FDCeiling:   int(p.fig.NoFile.Soft) - p.fig.BaseFDs,
		}
		if ns.conns > 0 {
			nf.BytesPerConn = float64(ns.rss-p.fig.BaseRSS) / float64(ns.conns)
			deltaSum += ns.rss - p.fig.BaseRSS
			connSum += ns.conns
		}
		rep.NodeFigures = append(rep.NodeFigures, nf)
	}
	if connSum > 0 {
		rep.NodeBytesPerConn = float64(deltaSum) / float64(connSum)
	}
	counts := map[string]int{}
	for _, nf := range rep.NodeFigures {
		counts[nf.Name] = nf.Connections
		rep.MaxPerNode = max(rep.MaxPerNode, nf.Connections)
	}
	if len(counts) > 0 {
		rep.MeanPerNode = float64(rep.Held) / float64(len(counts))
		rep.MaxOverMean = loadtest.Balance(counts)
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
