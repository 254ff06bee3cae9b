package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/clienttest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// workerEnv makes the test binary act as a bench worker process, so
// RunWorkers can be tested with real child processes.
const workerEnv = "WSDIRECT_LOADTEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" && len(os.Args) > 1 && os.Args[1] == WorkerCommand {
		if err := RunWorker(context.Background(), os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func baseConfig(fc *clienttest.Cluster, conns int) Config {
	c := DefaultConfig()
	c.AuthURL, c.Username, c.Password = fc.AuthURL(), clienttest.Username, clienttest.Password
	c.Conns, c.Concurrency = conns, 16
	return c
}

func TestRunConnectsMeasuresAndDistributes(t *testing.T) {
	fc := clienttest.New(t, 3)
	cfg := baseConfig(fc, 60)
	cfg.Rate = 600
	cfg.MsgRate = 20
	cfg.MsgSize = 32
	cfg.Duration = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 60 || len(rep.Errors) != 0 {
		t.Fatalf("connected %d, errors %v", rep.Connected, rep.Errors)
	}
	for _, n := range fc.Nodes {
		if rep.Nodes[n.ID] != 20 {
			t.Errorf("%s: report %d, want 20 (round-robin fake)", n.ID, rep.Nodes[n.ID])
		}
		waitAccepted(t, n, 20)
	}
	if b := Balance(rep.Nodes); b != 1 {
		t.Errorf("balance = %v, want 1", b)
	}
	for name, h := range map[string]*Histogram{"auth": rep.Auth, "upgrade": rep.Upgrade, "handshake": rep.Handshake} {
		if h.Count() != 60 || h.Max() <= 0 {
			t.Errorf("%s histogram: count %d max %v", name, h.Count(), h.Max())
		}
	}
	if rep.Handshake.Quantile(0.5) < rep.Auth.Quantile(0.5) {
		t.Errorf("handshake p50 %v below its auth part %v", rep.Handshake.Quantile(0.5), rep.Auth.Quantile(0.5))
	}
	// 60 conns × 20 msg/s × 0.5 s ≈ 600 messages; allow slack for pacing.
	if rep.MsgsSent < 300 || rep.MsgsReceived < rep.MsgsSent*9/10 || rep.RTT.Count() != uint64(rep.MsgsReceived) {
		t.Errorf("messages: sent %d received %d rtt samples %d", rep.MsgsSent, rep.MsgsReceived, rep.RTT.Count())
	}
	// The connect rate follows the target (60 at 600/s ≈ 0.1 s), not
	// instantly: a burst of 12 then pacing.
	if rep.ConnectEnd.Sub(rep.ConnectStart) < 50*time.Millisecond {
		t.Errorf("connect phase took %v, rate limit ignored", rep.ConnectEnd.Sub(rep.ConnectStart))
	}
	if rep.Dropped != 0 || rep.ClientRSSBytes <= 0 {
		t.Errorf("dropped %d rss %d", rep.Dropped, rep.ClientRSSBytes)
	}
}

func TestRunBindsSourceIPsRoundRobin(t *testing.T) {
	fc := clienttest.New(t, 1)
	cfg := baseConfig(fc, 9)
	ips, err := ParseSourceIPs("127.0.0.2-127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	cfg.SourceIPs = ips
	rep, err := Run(context.Background(), cfg, nil)
	if err != nil || rep.Connected != 9 {
		t.Fatalf("connected %d, err %v, errors %v", rep.Connected, err, rep.Errors)
	}
	// The fake records an upgrade just after writing the 101 response, so
	// Run can return before the last one is recorded.
	waitAccepted(t, fc.Nodes[0], 9)
	got := fc.Nodes[0].RemoteIPs()
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		if got[ip] != 3 {
			t.Errorf("source %s: %d connections, want 3 (all: %v)", ip, got[ip], got)
		}
	}
}

func TestRunCountsErrorsByKind(t *testing.T) {
	fc := clienttest.New(t, 1)
	fc.AuthStatus.Store(429)
	rep, err := Run(context.Background(), baseConfig(fc, 5), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 0 || rep.Errors["auth_429"] != 5 {
		t.Errorf("auth 429: connected %d, errors %v", rep.Connected, rep.Errors)
	}

	fc.AuthStatus.Store(0)
	fc.Nodes[0].Status.Store(503)
	rep, _ = Run(context.Background(), baseConfig(fc, 4), nil)
	if rep.Errors["node_503_node_full"] != 4 {
		t.Errorf("node 503: errors %v", rep.Errors)
	}
}

func TestRunCountsDroppedConnections(t *testing.T) {
	fc := clienttest.New(t, 1)
	fc.Nodes[0].CloseWith(wire.CloseDraining, wire.CloseDraining)
	cfg := baseConfig(fc, 5)
	cfg.Concurrency = 1 // the first two accepted are the drained ones
	cfg.Hold = 300 * time.Millisecond
	rep, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 5 || rep.Dropped != 2 || rep.Errors["dropped_4000"] != 2 {
		t.Errorf("connected %d dropped %d errors %v", rep.Connected, rep.Dropped, rep.Errors)
	}
}

func TestRunWorkersMergesChildReports(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	fc := clienttest.New(t, 2)
	t.Setenv(workerEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(fc, 31)
	cfg.Hold = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := RunWorkers(ctx, cfg, 3, exe, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Workers != 3 || rep.Target != 31 || rep.Connected != 31 {
		t.Fatalf("workers %d target %d connected %d errors %v", rep.Workers, rep.Target, rep.Connected, rep.Errors)
	}
	if rep.Handshake.Count() != 31 || rep.Nodes["node-1"]+rep.Nodes["node-2"] != 31 {
		t.Errorf("merged handshake count %d nodes %v", rep.Handshake.Count(), rep.Nodes)
	}
	accepted := func() int32 { return fc.Nodes[0].Accepted.Load() + fc.Nodes[1].Accepted.Load() }
	probe.Until(t, 10*time.Second, "the nodes to record 31 upgrades", func() error {
		return probe.Check(accepted() >= 31, "%d recorded", accepted())
	})
	if got := accepted(); got != 31 {
		t.Errorf("nodes recorded %d upgrades, want 31", got)
	}
}

// waitAccepted waits until the fake node n has recorded want upgrades, and
// fails if it recorded more.
func waitAccepted(t *testing.T, n *clienttest.Node, want int32) {
	t.Helper()
	probe.Until(t, 10*time.Second, fmt.Sprintf("%s to record %d upgrades", n.ID, want), func() error {
		return probe.Check(n.Accepted.Load() >= want, "%d recorded", n.Accepted.Load())
	})
	if got := n.Accepted.Load(); got != want {
		t.Errorf("%s recorded %d upgrades, want %d", n.ID, got, want)
	}
}

func TestParseSourceIPs(t *testing.T) {
	got, err := ParseSourceIPs("127.0.0.2-127.0.0.4, 10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"),
		netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("10.0.0.1")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := ParseSourceIPs(""); got != nil || err != nil {
		t.Errorf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"127.0.0.9-127.0.0.2", "::1", "x", "10.0.0.0-10.1.0.0", "127.0.0.1-"} {
		if _, err := ParseSourceIPs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestErrorKind(t *testing.T) {
	cases := map[error]string{
		&client.AuthError{Status: 401}:                    "auth_401",
		&client.NodeError{Status: 503, Code: "node_full"}: "node_503_node_full",
		&client.NodeError{Status: 502}:                    "node_502",
		fmt.Errorf("x: %w", context.DeadlineExceeded):     "timeout",
		fmt.Errorf("dial: %w", syscall.ECONNREFUSED):      "conn_refused",
		fmt.Errorf("dial: %w", syscall.EADDRNOTAVAIL):     "addr_not_available",
		fmt.Errorf("socket: %w", syscall.EMFILE):          "too_many_open_files",
		errors.New("strange"):                             "other",
	}
	for err, want := range cases {
		if got := ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestWorkerShare(t *testing.T) {
	for _, c := range []struct{ total, workers int }{{10, 3}, {9, 3}, {2, 5}, {150000, 10}, {7, 1}} {
		sum := 0
		for w := 0; w < c.workers; w++ {
			n := WorkerShare(c.total, c.workers, w)
			if n < c.total/c.workers || n > c.total/c.workers+1 {
				t.Errorf("WorkerShare(%d, %d, %d) = %d", c.total, c.workers, w, n)
			}
			sum += n
		}
		if sum != c.total {
			t.Errorf("shares of %d over %d sum to %d", c.total, c.workers, sum)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	good := DefaultConfig()
	good.AuthURL, good.Conns = "http://127.0.0.1:1", 1
	if err := good.validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	// Each key is the field the error must name: Run fills nothing in.
	for field, mod := range map[string]func(*Config){
		"AuthURL":          func(c *Config) { c.AuthURL = "" },
		"Conns":            func(c *Config) { c.Conns = 0 },
		"Rate":             func(c *Config) { c.Rate = -1 },
		"Concurrency":      func(c *Config) { c.Concurrency = 0 },
		"MsgRate":          func(c *Config) { c.MsgRate = -1 },
		"MsgSize":          func(c *Config) { c.MsgSize = 0 },
		"Duration":         func(c *Config) { c.MsgRate = 1 },
		"Hold":             func(c *Config) { c.Hold = -1 },
		"HandshakeTimeout": func(c *Config) { c.HandshakeTimeout = 0 },
		"BufferSize":       func(c *Config) { c.BufferSize = 0 },
	} {
		c := good
		mod(&c)
		if _, err := Run(context.Background(), c, nil); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
	d := DefaultDemoConfig()
	d.BinDir = t.TempDir()
	for field, mod := range map[string]func(*DemoConfig){
		"BinDir":           func(c *DemoConfig) { c.BinDir = "" },
		"Nodes":            func(c *DemoConfig) { c.Nodes = 1 },
		"Clients":          func(c *DemoConfig) { c.Clients = 0 },
		"Rate":             func(c *DemoConfig) { c.Rate = 0 },
		"Concurrency":      func(c *DemoConfig) { c.Concurrency = 0 },
		"ConnectTimeout":   func(c *DemoConfig) { c.ConnectTimeout = 0 },
		"ReconnectTimeout": func(c *DemoConfig) { c.ReconnectTimeout = 0 },
	} {
		c := d
		mod(&c)
		if _, err := Demo(context.Background(), c); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("demo %s: got %v, want an error naming it", field, err)
		}
	}
}
