package idleconn

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the harness re-execute this test binary as its client
// workers and reference servers, as it does wsdirect-bench.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		ctx := context.Background()
		switch os.Args[1] {
		case ClientCommand:
			if err := RunClient(ctx, os.Stdin, os.Stdout); err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
				os.Exit(1)
			}
			os.Exit(0)
		case ServerCommand:
			if err := RunServer(ctx, os.Args[2:], os.Stdin, os.Stdout); err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// TestSmallRun runs the harness at 200 connections per server over every
// kind of server (a node built from HEAD as the "old" one over ws, today's
// tree over wss, gorilla, nbio) and checks the report is sane: every
// connection held, none failed or dropped, memory per connection within
// bounds, nbio below gorilla (no goroutine per connection), CPU and rate
// measured, and a table and plot made. Its addresses are 127.72.0.x
// (servers) and 127.72.1.x (clients), used by nothing else.
func TestSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wsdirect-node twice and runs four servers")
	}
	cfg := DefaultConfig()
	cfg.Command = []string{os.Args[0]}
	cfg.RepoDir = filepath.Join("..", "..", "..")
	cfg.OldRev = "HEAD"
	cfg.Servers = []string{ServerOldNode, ServerNodeTLS, ServerGorilla, ServerNbio}
	cfg.Conns, cfg.NodeConns = 200, 200
	cfg.Marks = []int{100}
	cfg.Workers = 2
	cfg.Rate = 300
	cfg.Concurrency = 16
	cfg.Settle = time.Second
	cfg.Warmup = 50
	cfg.ServerIP = netip.MustParseAddr("127.72.0.10")
	cfg.SourceIPs = []netip.Addr{
		netip.MustParseAddr("127.72.1.1"), netip.MustParseAddr("127.72.1.2"),
		netip.MustParseAddr("127.72.1.3"), netip.MustParseAddr("127.72.1.4"),
	}
	cfg.WorkDir = t.TempDir()
	var progress bytes.Buffer
	cfg.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Servers) != len(cfg.Servers) {
		t.Fatalf("%d server results, want %d", len(res.Servers), len(cfg.Servers))
	}
	for i := range res.Servers {
		s := &res.Servers[i]
		if s.Held != 200 || s.Failed != 0 || s.Dropped != 0 {
			t.Errorf("%s: held %d, failed %d, dropped %d; want 200, 0, 0 (%s)", s.Server, s.Held, s.Failed, s.Dropped, s.FirstError)
		}
		if got := len(s.Marks); got != 2 {
			t.Errorf("%s: %d marks, want 2 (100, 200)", s.Server, got)
			continue
		}
		last := s.Last()
		raw, scav := s.RawPerConn(last), s.ScavengedPerConn(last)
		// Above 200 B (nbio holds about 0.8 KiB at 15,000, more at a few
		// hundred) and below 100 KiB (a leak or a wrong divisor).
		if raw < 200 || raw > 100<<10 || scav < 200 || scav > 100<<10 {
			t.Errorf("%s: %.0f B/conn raw, %.0f scavenged; want each in [200 B, 100 KiB]", s.Server, raw, scav)
		}
		if s.Server == ServerGorilla {
			// A parked goroutine's stack alone is 2 KiB or more. (The
			// node parks none: it reads a connection only when it has
			// data, and holds less.)
			if scav < 2<<10 {
				t.Errorf("%s: %.0f B/conn scavenged, below one goroutine stack (2 KiB): the RSS is not the server's", s.Server, scav)
			}
		}
		if cpu := s.CPUPerAccept(); cpu <= 0 || cpu > 100*time.Millisecond {
			t.Errorf("%s: CPU per accept %v; want in (0, 100 ms]", s.Server, cpu)
		}
		if r := s.ConnectRate(); r <= 0 || r > 2*cfg.Rate {
			t.Errorf("%s: connect rate %.0f/s; want in (0, %g]", s.Server, r, 2*cfg.Rate)
		}
		if s.RSSBefore <= 0 {
			t.Errorf("%s: RSS before %d", s.Server, s.RSSBefore)
		}
	}
	// Which server holds less is the benchmark's finding at 15,000
	// connections, not something 200 can show: at this size a server's
	// own start-up allocations (nbio's buffer pools, a few MiB) outweigh
	// the connections.
	var table bytes.Buffer
	res.WriteTable(&table)
	for _, s := range cfg.Servers {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %s:\n%s", s, table.String())
		}
	}
	t.Log("\n" + table.String())
	png := filepath.Join(t.TempDir(), "idle.png")
	if err := res.WritePNG(png); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
		t.Fatalf("plot: %v, %d bytes", err, len(data))
	}
}

func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Command = nil }, "Command is required"},
		{func(c *Config) { c.Servers = []string{ServerOldNode} }, `"old-node-ws" needs OldRev`},
		{func(c *Config) { c.Servers = []string{"centrifugo"} }, `unknown server "centrifugo"`},
		{func(c *Config) { c.NodeConns = 19_900 }, "one server process holds every connection"},
		{func(c *Config) { c.Workers, c.NodeConns, c.Concurrency = 1, 19_000, 1_000 }, "over the 20000-file process limit"},
		{func(c *Config) { c.Workers = 0 }, "Workers must be at least 1"},
		{func(c *Config) { c.Marks = []int{2000, 1000} }, "Marks must be ascending"},
		{func(c *Config) { c.SourceIPs = []netip.Addr{netip.MustParseAddr("10.0.0.1")} }, "not an IPv4 loopback address"},
		{func(c *Config) { c.Rate = 0 }, "Rate must be > 0"},
	} {
		cfg := DefaultConfig()
		cfg.Command, cfg.RepoDir = []string{"wsdirect-bench"}, "."
		tc.edit(&cfg)
		err := cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want error with %q, got %v", tc.want, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Command, cfg.RepoDir = []string{"wsdirect-bench"}, "."
	if err := cfg.validate(); err != nil {
		t.Errorf("DefaultConfig with Command and RepoDir: %v", err)
	}
}
