package compare

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
)

// TestCompareSmoke is the CI-sized side-by-side run: 200 connections and a
// short message phase on each of the three paths, on the real binaries.
func TestCompareSmoke(t *testing.T) {
	env := servers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := DefaultCompareConfig()
	cfg.Env, cfg.Conns, cfg.MsgRate, cfg.Duration, cfg.Progress = env, 200, 10, time.Second, testWriter{t}
	// Each handshake must finish within the loadtest's 10 s
	// HandshakeTimeout, counted from its start. With all 200 in flight at
	// once (the default concurrency, 256), the last ones queue behind all
	// the others: at the ~10 connections/s that a machine busy with other
	// test packages manages under -race, that is past 10 s. 16 in flight
	// keep a handshake's wait to its own.
	cfg.Concurrency = 16
	res, err := Compare(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res.WriteTable(&buf)
	t.Logf("\n%s", buf.String())
	if len(res.Paths) != 3 {
		t.Fatalf("got %d paths, want 3", len(res.Paths))
	}
	for _, p := range res.Paths {
		if p.Report.Connected != 200 || p.Report.Dropped != 0 {
			t.Errorf("%s: connected %d, dropped %d, errors %v", p.Path, p.Report.Connected, p.Report.Dropped, p.Report.Errors)
		}
		if p.ConnectRate <= 0 || p.HandshakeP50 <= 0 || p.HandshakeP99 < p.HandshakeP50 {
			t.Errorf("%s: connect rate %v, handshake p50 %v p99 %v", p.Path, p.ConnectRate, p.HandshakeP50, p.HandshakeP99)
		}
		// 200 connections x 10/s x 1s = 2,000 messages; allow for the pacing
		// of the last round.
		if p.Messages < 1500 || p.RTTP50 <= 0 || p.RTTP99 < p.RTTP50 {
			t.Errorf("%s: %d messages, rtt p50 %v p99 %v", p.Path, p.Messages, p.RTTP50, p.RTTP99)
		}
		// The client runs in this process (one worker).
		want := (p.ServerCPUSeconds + p.ClientCPUSeconds) / float64(p.Messages) * 100_000
		if p.CPUSeconds <= 0 || p.ServerCPUSeconds <= 0 || p.ClientCPUSeconds <= 0 ||
			p.ProcCPUPer100k < want*0.999 || p.ProcCPUPer100k > want*1.001 {
			t.Errorf("%s: cpu %v s (servers %v s, client %v s), %v s per 100k", p.Path, p.CPUSeconds, p.ServerCPUSeconds, p.ClientCPUSeconds, p.CPUPer100k)
		}
		total := 0
		for _, n := range p.NodeConns {
			total += n
		}
		if len(p.NodeConns) != 3 || total < 190 {
			t.Errorf("%s: auth saw %v connections per node, want 3 nodes holding ~200", p.Path, p.NodeConns)
		}
		wantProcs := 4 // 3 nodes + auth
		if p.Path != PathDirect {
			wantProcs = 5
			if p.HAProxyPeakRSS <= 0 {
				t.Errorf("%s: no haproxy RSS", p.Path)
			}
			// Auth sends every client to HAProxy.
			if p.Report.Nodes[PoolAudience] != 200 {
				t.Errorf("%s: clients were answered %v, want all via haproxy", p.Path, p.Report.Nodes)
			}
		} else if p.HAProxyPeakRSS != 0 {
			t.Errorf("direct path has a haproxy RSS")
		}
		if len(p.Procs) != wantProcs || p.NodesPeakRSS <= 0 || p.AuthPeakRSS <= 0 {
			t.Errorf("%s: procs %+v", p.Path, p.Procs)
		}
	}
	out := buf.String()
	for _, want := range []string{"connect rate", "message RTT p99", "CPU s / 100k msgs", "peak RSS haproxy", "x direct", "haproxy-tcp"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

// TestCompareTLSSmoke is the CI-sized TLS comparison: direct wss with full
// handshakes, the same with resumed sessions, and HAProxy terminating TLS
// in front of plain nodes, on the real binaries and haproxy, with the
// connect phase's CPU split by process.
func TestCompareTLSSmoke(t *testing.T) {
	env := servers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := DefaultCompareConfig()
	cfg.Env, cfg.Paths, cfg.Conns, cfg.MsgRate, cfg.Duration, cfg.Progress = env, TLSPaths, 150, 5, time.Second, testWriter{t}
	// Few in flight: under -race on 2 loaded cores, 150 TLS handshakes at
	// once can outlast the 10 s handshake timeout; this test checks the
	// paths work, the benchmark measures rates.
	cfg.Concurrency = 8
	res, err := Compare(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res.WriteTable(&buf)
	t.Logf("\n%s", buf.String())
	if len(res.Paths) != 3 || res.Direct() == nil || res.Direct().Path != PathDirectTLS {
		t.Fatalf("paths %d, baseline %v", len(res.Paths), res.Direct())
	}
	for _, p := range res.Paths {
		if p.Report.Connected != 150 || p.Report.Dropped != 0 {
			t.Errorf("%s: connected %d, dropped %d, errors %v (%v)", p.Path, p.Report.Connected, p.Report.Dropped, p.Report.Errors, p.Report.ErrorSamples)
		}
		cc := p.ConnectCPU
		if cc.Servers <= 0 || cc.Client <= 0 || cc.Processes < cc.Servers {
			t.Errorf("%s: connect CPU %+v", p.Path, cc)
		}
		switch p.Path {
		case PathDirectTLS:
			if p.Report.NodeTLSResumed != 0 || cc.HAProxy != 0 || cc.Nodes <= 0 || cc.Auth <= 0 {
				t.Errorf("%s: resumed %d, connect CPU %+v", p.Path, p.Report.NodeTLSResumed, cc)
			}
		case PathDirectTLSResume:
			// The first handshakes with each node are full ones (as many as
			// are in flight before a ticket arrives); after that, resumed.
			if p.Report.NodeTLSResumed < 100 {
				t.Errorf("%s: only %d of 150 node handshakes resumed", p.Path, p.Report.NodeTLSResumed)
			}
		case PathHAProxyTLS:
			if cc.HAProxy <= 0 || cc.Auth <= 0 || p.Report.Nodes[PoolAudience] != 150 {
				t.Errorf("%s: connect CPU %+v, answered %v", p.Path, cc, p.Report.Nodes)
			}
		}
	}
}

func TestCompareConfigErrors(t *testing.T) {
	// Each key is what the error must name: Compare fills nothing in.
	for field, mod := range map[string]func(*CompareConfig){
		"unknown path": func(c *CompareConfig) { c.Paths = []string{"direct", "nginx"} },
		"baseline":     func(c *CompareConfig) { c.Paths = []string{PathHAProxyTCP} },
		"direct-tls":   func(c *CompareConfig) { c.Paths = []string{PathHAProxyTLS, PathDirectTLS} },
		"Conns":        func(c *CompareConfig) { c.Conns = -1 },
		"Concurrency":  func(c *CompareConfig) { c.Concurrency = 0 },
		"MsgRate":      func(c *CompareConfig) { c.MsgRate = 0 },
		"MsgSize":      func(c *CompareConfig) { c.MsgSize = 0 },
		"Duration":     func(c *CompareConfig) { c.Duration = 0 },
		"WorkerExe":    func(c *CompareConfig) { c.Conns, c.Workers = 100, 2 },
		"2 workers":    func(c *CompareConfig) { c.Conns = 16_000 },
		"BinDir":       func(c *CompareConfig) { c.Env.BinDir = "" },
		"OldBinDir":    func(c *CompareConfig) { c.Paths = []string{PathDirectOld, PathDirect} },
		"MaxConns":     func(c *CompareConfig) { c.Env.MaxConns = 0 },
	} {
		cfg := DefaultCompareConfig()
		cfg.Env.BinDir = "/nonexistent"
		mod(&cfg)
		if _, err := Compare(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
}

func TestWriteTableRatios(t *testing.T) {
	rep := func(n int) *loadtest.Report { r := loadtest.NewReport(); r.Connected = n; return r }
	res := &CompareResult{Conns: 10, MsgRate: 1, Duration: time.Second, Workers: 1, CPUs: 2, Paths: []PathResult{
		{Path: PathDirect, Report: rep(10), ConnectRate: 1000, HandshakeP50: 2, ProcCPUPer100k: 4},
		{Path: PathHAProxyHTTP, Report: rep(10), ConnectRate: 500, HandshakeP50: 3, ProcCPUPer100k: 10},
	}}
	var buf bytes.Buffer
	res.WriteTable(&buf)
	lines := map[string]string{}
	for _, l := range strings.Split(buf.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[strings.SplitN(l, "  ", 2)[0]] = l
		}
	}
	for row, want := range map[string]string{"connect rate": "0.50", "handshake p50": "1.50", "CPU s / 100k msgs": "2.50", "connected": "1.00"} {
		l, ok := lines[row]
		if !ok {
			t.Fatalf("no %q row in\n%s", row, buf.String())
		}
		if f := strings.Fields(l); f[len(f)-1] != want {
			t.Errorf("%s ratio = %q, want %s (line %q)", row, f[len(f)-1], want, l)
		}
	}
}

// TestWriteTableRepeats: paths run several times get a summary of their
// medians and means, with the ratio of medians to the first path; a run
// without repeats gets none.
func TestWriteTableRepeats(t *testing.T) {
	rep := func() *loadtest.Report { r := loadtest.NewReport(); r.Connected = 10; return r }
	run := func(path string, cpu, p99 float64) PathResult {
		return PathResult{Path: path, Report: rep(), ServerCPUPer100k: cpu, RTTP50: 0.3, RTTP99: p99}
	}
	res := &CompareResult{Conns: 10, MsgRate: 1, Duration: time.Second, Workers: 1, CPUs: 2, Paths: []PathResult{
		run(PathDirectOld, 5, 2), run(PathDirect, 4, 3), run(PathDirect, 6, 5), run(PathDirectOld, 4, 1),
		run(PathDirectOld, 9, 2), run(PathDirect, 5, 4),
	}}
	var buf bytes.Buffer
	res.WriteTable(&buf)
	out := buf.String()
	for _, want := range []string{
		"repeated paths: median (mean) over their runs; ratio of medians to direct-old",
		"direct-old      3 runs  5 s (6 s)\n",                                     // CPU 4, 5, 9
		"direct          3 runs  5 s (5 s)  x 1.00, above in 44 % of run pairs\n", // 4, 5, 6 against 4, 5, 9: 3 pairs above, 2 ties

		"direct-old      3 runs  2 ms (1.67 ms)\n", // p99 1, 2, 2
		"direct          3 runs  4 ms (4 ms)  x 2.00, above in 100 % of run pairs\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	res.Paths = res.Paths[:2]
	buf.Reset()
	res.WriteTable(&buf)
	if strings.Contains(buf.String(), "repeated paths") {
		t.Errorf("a summary of repeats without any:\n%s", buf.String())
	}
}

func TestReadProcessCPU(t *testing.T) {
	end := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(end) {
	}
	c, err := ReadProcessCPU(os.Getpid())
	if err != nil || c <= 0 {
		t.Errorf("own CPU = %v, %v", c, err)
	}
	if _, err := ReadProcessCPU(1 << 30); err == nil {
		t.Error("no such process: no error")
	}
}

func TestCPUSampler(t *testing.T) {
	before, err := ReadSystemCPU()
	if err != nil {
		t.Fatal(err)
	}
	s, err := startCPUSampler(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	// Burn some CPU so the busy counter moves by at least a few ticks.
	end := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(end) {
		x++
	}
	to := time.Now()
	time.Sleep(30 * time.Millisecond)
	s.Stop()
	cpu, each, wall, err := s.Between(from, to)
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 || wall <= 0 || wall > to.Sub(from) {
		t.Errorf("cpu %v over %v (window %v, spun %d)", cpu, wall, to.Sub(from), x)
	}
	if len(each) != 0 {
		t.Errorf("no process watched, yet process CPU %v", each)
	}
	if _, _, _, err := s.Between(to.Add(time.Hour), to.Add(2*time.Hour)); err == nil {
		t.Error("window without samples: no error")
	}
	after, _ := ReadSystemCPU()
	if after < before+cpu {
		t.Errorf("system cpu went from %v to %v, window alone had %v", before, after, cpu)
	}
}

// TestCPUBetweenSkipsUnreadEnds: a process that could not be read at one end
// of the window adds nothing, instead of all its CPU since it started.
func TestCPUBetweenSkipsUnreadEnds(t *testing.T) {
	t0 := time.Now()
	s := &cpuSampler{pids: []int{1, 2}, samples: []cpuSample{
		{at: t0, busy: 10 * time.Second, procs: []time.Duration{-1, 3 * time.Second}},
		{at: t0.Add(time.Second), busy: 11 * time.Second, procs: []time.Duration{50 * time.Second, 3500 * time.Millisecond}},
	}}
	cpu, each, wall, err := s.Between(t0, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if cpu != time.Second || wall != time.Second || each[0] != 0 || each[1] != 500*time.Millisecond {
		t.Fatalf("cpu %v wall %v each %v; want 1s 1s [0 500ms]", cpu, wall, each)
	}
}

// TestCPUBetweenShortWindow: a window between two samples, too short to
// hold one, is read between the samples around it, not refused; a window
// past the last sample still is.
func TestCPUBetweenShortWindow(t *testing.T) {
	t0 := time.Now()
	s := &cpuSampler{samples: []cpuSample{
		{at: t0, busy: 10 * time.Second},
		{at: t0.Add(100 * time.Millisecond), busy: 10100 * time.Millisecond},
		{at: t0.Add(200 * time.Millisecond), busy: 10300 * time.Millisecond},
	}}
	cpu, _, wall, err := s.Between(t0.Add(120*time.Millisecond), t0.Add(170*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if cpu != 200*time.Millisecond || wall != 100*time.Millisecond {
		t.Fatalf("cpu %v over %v, want 200ms over the 100ms around the window", cpu, wall)
	}
	if _, _, _, err := s.Between(t0.Add(150*time.Millisecond), t0.Add(250*time.Millisecond)); err == nil {
		t.Fatal("a window ending past the last sample was read")
	}
}
