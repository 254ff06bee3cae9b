package scalerun

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
)

// workerEnv makes this test binary act as a loadtest worker when it is
// started as "<test binary> worker": RunWorkers needs an executable with
// that subcommand, and the test binary saves building wsdirect-bench.
const workerEnv = "WSDIRECT_SCALERUN_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" && len(os.Args) > 1 && os.Args[1] == loadtest.WorkerCommand {
		if err := loadtest.RunWorker(context.Background(), os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestScaleSmoke is the CI-sized scale run: 3 node processes, 600
// connections over 2 worker processes, everything real. It keeps the
// harness from rotting; the full-size figures are in docs/benchmarks.md.
func TestScaleSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bin := t.TempDir()
	if err := localcluster.BuildBinaries(ctx, bin); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(workerEnv, "1")

	cfg := DefaultConfig()
	cfg.BinDir, cfg.WorkerExe = bin, exe
	cfg.Nodes, cfg.Conns, cfg.Workers, cfg.MaxConns = 3, 600, 2, 1000
	cfg.Rate, cfg.Concurrency = 600, 64
	cfg.SourceIPs = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	cfg.Hold, cfg.SampleInterval, cfg.Settle = 4*time.Second, 500*time.Millisecond, 500*time.Millisecond
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}

	if rep.Held != 600 || rep.Load.Connected != 600 {
		t.Errorf("held %d (node side), connected %d (client side), want 600 each", rep.Held, rep.Load.Connected)
	}
	if len(rep.NodeFigures) != 3 {
		t.Fatalf("%d node figures, want 3", len(rep.NodeFigures))
	}
	sum := 0
	for _, n := range rep.NodeFigures {
		sum += n.Connections
		if n.PID == 0 || n.Cap != 1000 {
			t.Errorf("%s: pid %d cap %d", n.Name, n.PID, n.Cap)
		}
		if n.NoFile.Soft <= 0 || n.NoFile.Hard < n.NoFile.Soft {
			t.Errorf("%s: nofile %+v", n.Name, n.NoFile)
		}
		// Each client connection is one descriptor on its node.
		if n.FDs < n.BaseFDs+n.Connections {
			t.Errorf("%s: %d fds with %d connections over a base of %d", n.Name, n.FDs, n.Connections, n.BaseFDs)
		}
		if n.FDCeiling != int(n.NoFile.Soft)-n.BaseFDs || n.BaseFDs < 3 {
			t.Errorf("%s: fd ceiling %d, base fds %d, soft %d", n.Name, n.FDCeiling, n.BaseFDs, n.NoFile.Soft)
		}
		if n.RSS <= 0 || n.BaseRSS <= 0 {
			t.Errorf("%s: rss %d base %d", n.Name, n.RSS, n.BaseRSS)
		}
	}
	if rep.AuthHeld <= 0 || rep.AuthHeld > 600 {
		t.Errorf("auth listed %d connections at the peak", rep.AuthHeld)
	}
	if sum != rep.Held {
		t.Errorf("node figures sum to %d, held %d", sum, rep.Held)
	}
	if rep.MaxOverMean < 1 || rep.MaxOverMean > 1.5 {
		t.Errorf("max/mean %.3f", rep.MaxOverMean)
	}
	if len(rep.WorkerProcs) != 2 {
		t.Errorf("%d worker processes sampled, want 2", len(rep.WorkerProcs))
	}
	for _, w := range rep.WorkerProcs {
		if w.PeakFDs < 300 || w.NoFile.Soft <= 0 {
			t.Errorf("%s: peak fds %d nofile %+v", w.Name, w.PeakFDs, w.NoFile)
		}
	}
	if rep.ClientBytesPerConn <= 0 {
		t.Errorf("client bytes per conn %f", rep.ClientBytesPerConn)
	}
	if rep.Host.Somaxconn <= 0 || rep.Host.LocalPortRange[1] <= rep.Host.LocalPortRange[0] || rep.Host.MemTotal <= 0 {
		t.Errorf("host limits %+v", rep.Host)
	}
	if len(rep.Limits) == 0 || !strings.HasPrefix(rep.Limits[0], "no limit hit") {
		t.Errorf("limits %q, want none hit", rep.Limits)
	}

	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, want := range []string{"held (node side)", "node-3", "ip_local_port_range", "limits hit:", "nofile soft/hard"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("json: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := DefaultConfig()
	base.BinDir, base.WorkerExe = "/bin", "/bin/true"
	if err := base.validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"no bin dir":          func(c *Config) { c.BinDir = "" },
		"no worker":           func(c *Config) { c.WorkerExe = "" },
		"no nodes":            func(c *Config) { c.Nodes = 0 },
		"negative rate":       func(c *Config) { c.Rate = -1 },
		"too few workers":     func(c *Config) { c.Workers = 5 }, // 30,000 per worker
		"over total capacity": func(c *Config) { c.MaxConns = 10_000 },
		"zero sample":         func(c *Config) { c.SampleInterval = 0 },
		"concurrency":         func(c *Config) { c.Concurrency = 2 },
	} {
		c := base
		mut(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParsers(t *testing.T) {
	lim, err := parseLimits("Limit                     Soft Limit           Hard Limit           Units\n" +
		"Max cpu time              unlimited            unlimited            seconds\n" +
		"Max open files            1024                 20000                files\n")
	if err != nil || lim != (NoFile{Soft: 1024, Hard: 20000}) {
		t.Errorf("parseLimits = %+v, %v", lim, err)
	}
	if _, err := parseLimits("Max processes 1 2 processes\n"); err == nil {
		t.Error("parseLimits without open files: no error")
	}
	if lim, err := parseLimits("Max open files            unlimited unlimited files\n"); err != nil || lim.Soft != -1 {
		t.Errorf("unlimited: %+v %v", lim, err)
	}

	ppid, err := parseStatPPID("4242 (my (odd) prog) S 17 4242 4242 0 -1")
	if err != nil || ppid != 17 {
		t.Errorf("parseStatPPID = %d, %v", ppid, err)
	}

	m, err := parseNetstat("TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 12 13\nIpExt: A\nIpExt: 1\n", "TcpExt")
	if err != nil || m["ListenOverflows"] != 12 || m["ListenDrops"] != 13 {
		t.Errorf("parseNetstat = %v, %v", m, err)
	}
	if _, err := parseNetstat("TcpExt: A B\nTcpExt: 1\n", "TcpExt"); err == nil {
		t.Error("parseNetstat with a missing value: no error")
	}

	if n, err := parseGauge("# HELP wsdirect_node_connections x\nwsdirect_node_connections_total 9\nwsdirect_node_connections 1234\n", connGauge); err != nil || n != 1234 {
		t.Errorf("parseGauge = %d, %v", n, err)
	}
	if _, err := parseGauge("other 1\n", connGauge); err == nil {
		t.Error("parseGauge without the metric: no error")
	}

	s, err := parseSockstatTCP("sockets: used 9\nTCP: inuse 5 orphan 0 tw 2 alloc 9 mem 7\nUDP: inuse 1\n")
	if err != nil || s["inuse"] != 5 || s["tw"] != 2 || s["mem"] != 7 {
		t.Errorf("parseSockstatTCP = %v, %v", s, err)
	}
}

// TestHostAndProcReaders reads the real /proc of this process and host.
func TestHostAndProcReaders(t *testing.T) {
	h, err := ReadHostLimits()
	if err != nil {
		t.Fatal(err)
	}
	if h.Somaxconn <= 0 || h.FileMax <= 0 || h.NrOpen <= 0 || h.CPUs <= 0 || h.TCPMem[2] <= 0 {
		t.Errorf("host limits %+v", h)
	}
	lim, err := procNoFile(0)
	if err != nil {
		t.Fatal(err)
	}
	// Go raises the soft limit to the hard one at start-up (since 1.19).
	if lim.Hard > 0 && lim.Soft != lim.Hard {
		t.Errorf("soft RLIMIT_NOFILE %d, hard %d: Go should have raised it", lim.Soft, lim.Hard)
	}
	before, err := procFDs(0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(t.TempDir(), "."))
	if err != nil {
		t.Fatal(err)
	}
	after, err := procFDs(0)
	f.Close()
	if err != nil || after != before+1 {
		t.Errorf("fds %d then %d (err %v) after opening one file", before, after, err)
	}
	if rss, err := localcluster.ProcRSS(0); err != nil || rss <= 0 {
		t.Errorf("rss %d %v", rss, err)
	}
	if _, err := ReadNetCounters(); err != nil {
		t.Error(err)
	}
}
