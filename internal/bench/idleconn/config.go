package idleconn

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"
)

// Servers the harness measures.
const (
	// ServerNode and ServerNodeTLS are wsdirect-node built from
	// Config.RepoDir's work tree, over ws:// and wss://.
	ServerNode    = "node-ws"
	ServerNodeTLS = "node-wss"
	// ServerOldNode and ServerOldNodeTLS are wsdirect-node built from
	// Config.OldRev, the same two ways.
	ServerOldNode    = "old-node-ws"
	ServerOldNodeTLS = "old-node-wss"
	ServerGorilla    = KindGorilla
	ServerNbio       = KindNbio
)

// AllServers lists every server name in the order of the default run.
var AllServers = []string{ServerOldNode, ServerNode, ServerOldNodeTLS, ServerNodeTLS, ServerGorilla, ServerNbio}

func isNode(s string) bool { return s != ServerGorilla && s != ServerNbio }
func isOld(s string) bool  { return s == ServerOldNode || s == ServerOldNodeTLS }
func isTLS(s string) bool  { return s == ServerNodeTLS || s == ServerOldNodeTLS }

// Config describes one side-by-side run. Start from DefaultConfig; Run
// rejects invalid fields.
type Config struct {
	// Command runs this harness's subcommands: Command followed by
	// ClientCommand or ServerCommand (wsdirect-bench, or a test binary
	// that dispatches them). Required.
	Command []string
	// RepoDir is the module checkout wsdirect-node and wsdirect-auth are
	// built from (with the scavenge hook, see package scavenge). Required.
	RepoDir string
	// OldRev is a git revision of RepoDir whose wsdirect-node the old-node
	// servers run (today's node, next to a new one); empty when Servers
	// has no old-node server.
	OldRev string
	// Servers to measure, one after another, each on fresh processes.
	Servers []string
	// Conns is how many connections the reference servers (gorilla, nbio)
	// are taken to, and NodeConns the nodes.
	Conns     int
	NodeConns int
	// Marks are the connection counts at which the sweep samples (those
	// above a server's count are skipped; its count is always a mark).
	Marks []int
	// ScavengeAtMarks asks the server to scavenge at every mark, not only
	// at the last: each mark then has a scavenged figure too, and the raw
	// figure of a mark holds only the garbage made since the mark before.
	ScavengeAtMarks bool
	// Workers is the number of client processes; each holds its share of
	// the connections and must stay under the 20,000-file limit.
	Workers int
	// Rate is the total connect rate per second, Concurrency the total
	// handshakes in flight.
	Rate        float64
	Concurrency int
	// HandshakeTimeout bounds one connect (auth request plus upgrade).
	HandshakeTimeout time.Duration
	// Settle is the pause after each connect step before the server is
	// sampled, so handshake goroutines have exited; 0 means none.
	Settle time.Duration
	// Warmup connections are opened and closed before the baseline, so
	// one-time growth (pools, runtime structures) is not charged to the
	// measured connections; 0 means none.
	Warmup int
	// ServerIP is where the servers listen: auth on it, the node and the
	// reference servers on the next address. SourceIPs are the clients'
	// local addresses, bound round-robin.
	ServerIP  netip.Addr
	SourceIPs []netip.Addr
	// WorkDir keeps the built binaries and the servers' logs; empty means
	// a temporary directory, removed at the end.
	WorkDir string
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
}

// DefaultConfig is `make bench-idle`'s full run: 15,000 connections to each
// reference server and 18,000 to the nodes. The caller sets Command and
// RepoDir.
func DefaultConfig() Config {
	return Config{
		Servers: []string{ServerNode, ServerNodeTLS, ServerGorilla, ServerNbio},
		Conns:   15_000,
		// 18,000: the node's figure of record (docs/design.md section 11).
		NodeConns: 18_000,
		Marks:     []int{1_000, 2_000, 4_000, 8_000, 12_000, 15_000, 18_000},
		// A GC and a scavenge cost milliseconds; a figure at every mark is
		// worth them.
		ScavengeAtMarks: true,
		// 3 workers: 6,000 connections each at 18,000, far under the
		// 20,000-file limit, and few processes on a 2-core machine.
		Workers: 3,
		// 600/s: 18,000 in 30 s; the servers' accept path is measured, not
		// how a 2-core machine shared with the clients (and their TLS
		// handshakes) copes with overload.
		Rate:             600,
		Concurrency:      48,
		HandshakeTimeout: 30 * time.Second,
		// 2 s: handshake goroutines gone, the TCP stack quiet.
		Settle: 2 * time.Second,
		Warmup: 500,
		// 127.71.0.x for the servers and 127.71.1.x for the clients: a
		// range no other harness or test of this repository uses.
		ServerIP: netip.MustParseAddr("127.71.0.10"),
		SourceIPs: []netip.Addr{
			netip.MustParseAddr("127.71.1.1"), netip.MustParseAddr("127.71.1.2"),
			netip.MustParseAddr("127.71.1.3"), netip.MustParseAddr("127.71.1.4"),
			netip.MustParseAddr("127.71.1.5"), netip.MustParseAddr("127.71.1.6"),
			netip.MustParseAddr("127.71.1.7"), netip.MustParseAddr("127.71.1.8"),
		},
	}
}

// maxFilesPerProcess is the hard RLIMIT_NOFILE of every process here.
const maxFilesPerProcess = 20_000

func (c *Config) validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("idleconn: "+format, a...)) }
	if len(c.Command) == 0 {
		add("Command is required")
	}
	if c.RepoDir == "" {
		add("RepoDir is required")
	}
	if len(c.Servers) == 0 {
		add("Servers: at least one is required")
	}
	seen := map[string]bool{}
	for _, s := range c.Servers {
		known := false
		for _, k := range AllServers {
			known = known || s == k
		}
		switch {
		case !known:
			add("Servers: unknown server %q (want from %v)", s, AllServers)
		case seen[s]:
			add("Servers: %q twice", s)
		case isOld(s) && c.OldRev == "":
			add("Servers: %q needs OldRev", s)
		}
		seen[s] = true
	}
	if c.Conns < 1 || c.NodeConns < 1 {
		add("Conns and NodeConns must be at least 1, got %d and %d", c.Conns, c.NodeConns)
	}
	if !sort.IntsAreSorted(c.Marks) {
		add("Marks must be ascending, got %v", c.Marks)
	}
	for _, m := range c.Marks {
		if m < 1 {
			add("Marks must be positive, got %v", c.Marks)
			break
		}
	}
	if c.Workers < 1 {
		add("Workers must be at least 1, got %d", c.Workers)
	} else if per := (max(c.Conns, c.NodeConns, c.Warmup)+c.Workers-1)/c.Workers + c.Concurrency; per >= maxFilesPerProcess-100 {
		add("%d connections over %d workers is %d files per worker, over the %d-file process limit; use more workers",
			max(c.Conns, c.NodeConns), c.Workers, per, maxFilesPerProcess)
	}
	if max(c.Conns, c.NodeConns) >= maxFilesPerProcess-200 {
		add("one server process holds every connection: at most %d, got %d", maxFilesPerProcess-200, max(c.Conns, c.NodeConns))
	}
	if !(c.Rate > 0) {
		add("Rate must be > 0, got %g", c.Rate)
	}
	if c.Concurrency < c.Workers {
		add("Concurrency (%d) must be at least Workers (%d)", c.Concurrency, c.Workers)
	}
	if c.HandshakeTimeout <= 0 {
		add("HandshakeTimeout must be > 0, got %s", c.HandshakeTimeout)
	}
	if c.Settle < 0 || c.Warmup < 0 {
		add("Settle and Warmup must not be negative")
	}
	if !c.ServerIP.Is4() || !c.ServerIP.IsLoopback() {
		add("ServerIP %v must be an IPv4 loopback address", c.ServerIP)
	}
	if len(c.SourceIPs) == 0 {
		add("SourceIPs: at least one is required")
	}
	for _, ip := range c.SourceIPs {
		if !ip.Is4() || !ip.IsLoopback() {
			add("SourceIPs: %v is not an IPv4 loopback address", ip)
		}
	}
	return errors.Join(errs...)
}

// connsFor is how many connections server s is taken to.
func (c *Config) connsFor(s string) int {
	if isNode(s) {
		return c.NodeConns
	}
	return c.Conns
}

// marksFor is the sweep of a server taken to n connections.
func (c *Config) marksFor(n int) []int {
	var out []int
	for _, m := range c.Marks {
		if m < n {
			out = append(out, m)
		}
	}
	return append(out, n)
}
