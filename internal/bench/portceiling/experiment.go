package portceiling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// Config describes one port-ceiling experiment. Start from DefaultConfig;
// Run rejects invalid fields.
type Config struct {
	// Ports is the size of the namespace's ephemeral port range, from 100
	// to MaxPorts (see there).
	Ports int
	// PortRangeStart is the first ephemeral port, above the fixed ports
	// the experiment listens on.
	PortRangeStart int
	// Mode is HAProxy's mode, haproxycfg.ModeHTTP (the article's setup) or
	// haproxycfg.ModeTCP (standing in for an L4 balancer).
	Mode string
	// NodeBinary is the wsdirect-node executable. Required.
	NodeBinary string
	// HAProxyBinary is the haproxy executable; required for HAProxy paths.
	HAProxyBinary string
	// ClientCommand is the argv of a program that runs ClientMain when
	// ClientEnv is set (a test re-executes its own binary). Required.
	ClientCommand []string
	// Workers is how many handshakes the client runs at once; at least 1.
	Workers int
	// StopAfterFailures is how many failed connections in a row mean the
	// ceiling is reached; at least 1.
	StopAfterFailures int
	// Timeout bounds one path's run, start-up included. Must be > 0.
	Timeout time.Duration
	// Dir holds keys, configs and logs. Required.
	Dir string
}

const (
	// DefaultPorts is CI-sized: about 1,000 connections per source IP.
	DefaultPorts = 1000
	// MaxPorts keeps the three-source-IP run under the 20,000 open files
	// each process may have: HAProxy needs two descriptors per proxied
	// connection, and 3 × 2,800 plus the attempts past the ceiling is
	// about 18,700.
	MaxPorts = 2800
)

// DefaultConfig returns the CI-sized experiment; the caller sets the
// binaries, ClientCommand and Dir.
func DefaultConfig() Config {
	return Config{
		Ports: DefaultPorts,
		// 40000, clear of the fixed ports below it.
		PortRangeStart: 40000,
		Mode:           haproxycfg.ModeHTTP,
		// 16 handshakes in flight keep HAProxy and the node busy on a
		// small machine.
		Workers: 16,
		// 100 failures in a row is no accident: the ceiling is reached.
		StopAfterFailures: 100,
		// Bounds a path that hangs: at DefaultPorts all five runs in
		// docs/benchmarks.md, build included, took 53 s.
		Timeout: 2 * time.Minute,
	}
}

// Fixed addresses inside the namespace. The ports lie below the ephemeral
// range so nothing competes with them.
const (
	nodeHost     = "127.0.0.2"
	nodePort     = 8080
	gossipPort   = 7946
	frontendHost = "127.0.0.1"
	frontendPort = 8000
	nodeName     = "ceiling-node"
	// haproxySourceNet and clientSourceNet are the /24s HAProxy's source
	// IPs and the clients' source IPs are taken from.
	haproxySourceNet = "127.0.1."
	clientSourceNet  = "127.0.2."
)

// Path is one way for clients to reach the node.
type Path struct {
	// SourceIPs is how many source IPs HAProxy connects to the node from
	// (one server line each); 0 means no HAProxy: clients connect to the
	// node directly, as wsdirect assigns them.
	SourceIPs int
}

// Direct is the path without a proxy.
func Direct() Path { return Path{} }

// HAProxy is the path through HAProxy with n source IPs.
func HAProxy(n int) Path { return Path{SourceIPs: n} }

// DefaultPaths are the three runs of the experiment.
func DefaultPaths() []Path { return []Path{HAProxy(1), HAProxy(3), Direct()} }

// String names the path for tables.
func (p Path) String() string {
	switch p.SourceIPs {
	case 0:
		return "direct to the node"
	case 1:
		return "HAProxy, 1 source IP"
	default:
		return fmt.Sprintf("HAProxy, %d source IPs", p.SourceIPs)
	}
}

// Result is the outcome of one path.
type Result struct {
	Path Path
	// Mode is HAProxy's mode ("" for the direct path).
	Mode string
	// Ports is the size of the ephemeral port range.
	Ports int
	// Target is how many connections the path is expected to carry if
	// nothing limits it: 3 × Ports.
	Target int
	// ClientSources is how many source IPs the clients were spread over.
	ClientSources int
	ClientResult
	// HAProxyLog is the end of HAProxy's own output (its log lines go to
	// stderr); Config.Dir keeps all of it.
	HAProxyLog string
	// HAProxyNoFreePorts counts HAProxy's "Connect() failed ... no free
	// ports" messages: connect() to the node found no ephemeral port left
	// for the source IP.
	HAProxyNoFreePorts int
}

// noFreePorts is what HAProxy prints when connect() fails with
// EADDRNOTAVAIL or EAGAIN.
const noFreePorts = "no free ports"

// validate reports every problem with c.
func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("portceiling: "+format, args...)) }
	if c.Ports < 100 || c.Ports > MaxPorts {
		add("Ports %d must be within 100-%d (HAProxy needs two descriptors per connection and has 20,000)", c.Ports, MaxPorts)
	}
	if c.PortRangeStart <= frontendPort || c.PortRangeStart+c.Ports-1 > 65535 {
		add("PortRangeStart %d must be above %d and leave room for %d ports", c.PortRangeStart, frontendPort, c.Ports)
	}
	if c.Mode != haproxycfg.ModeHTTP && c.Mode != haproxycfg.ModeTCP {
		add("Mode %q: use %q or %q", c.Mode, haproxycfg.ModeHTTP, haproxycfg.ModeTCP)
	}
	if c.NodeBinary == "" {
		add("NodeBinary is required")
	}
	if len(c.ClientCommand) == 0 {
		add("ClientCommand is required")
	}
	if c.Dir == "" {
		add("Dir is required")
	}
	if c.Workers < 1 {
		add("Workers must be at least 1, got %d", c.Workers)
	}
	if c.StopAfterFailures < 1 {
		add("StopAfterFailures must be at least 1, got %d", c.StopAfterFailures)
	}
	if c.Timeout <= 0 {
		add("Timeout must be > 0, got %s", c.Timeout)
	}
	return errors.Join(errs...)
}

// attempts is how many connections a path tries: the target, plus room to
// see failures past it.
func (c Config) attempts(p Path) int {
	if p.SourceIPs == 0 {
		return 3 * c.Ports
	}
	return 3*c.Ports + max(c.StopAfterFailures*2, c.Ports/10)
}

// Run runs path p in ns, which must be fresh (a namespace per path, so no
// TIME_WAIT sockets or addresses carry over): it narrows the port range,
// adds the addresses, starts the node (and HAProxy), runs the client and
// stops everything it started.
func Run(ctx context.Context, ns *Namespace, cfg Config, p Path) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	if p.SourceIPs < 0 || p.SourceIPs > 250 {
		return Result{}, fmt.Errorf("portceiling: %d source IPs: use 0 (direct) to 250", p.SourceIPs)
	}
	if p.SourceIPs > 0 && cfg.HAProxyBinary == "" {
		return Result{}, errors.New("portceiling: HAProxy paths need Config.HAProxyBinary")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	attempts := cfg.attempts(p)
	// The clients' own connections take ephemeral ports too, one per
	// connection from each client source IP. Spreading them so that each
	// source IP uses at most 40% of the range keeps the client side far
	// from its own ceiling: what the run measures is HAProxy's side
	// (HAProxy → node), the one the article hit. Direct clients are
	// spread the same way; in production they are different machines.
	perSource := max(1, cfg.Ports*4/10)
	clientSources := make([]string, (attempts+perSource-1)/perSource)
	if len(clientSources) > 250 {
		return Result{}, fmt.Errorf("portceiling: %d attempts need %d client source IPs, more than a /24 holds", attempts, len(clientSources))
	}
	var addrs []netip.Addr
	for i := range clientSources {
		clientSources[i] = clientSourceNet + strconv.Itoa(i+1)
		addrs = append(addrs, netip.MustParseAddr(clientSources[i]))
	}
	haproxySources := make([]string, p.SourceIPs)
	for i := range haproxySources {
		haproxySources[i] = haproxySourceNet + strconv.Itoa(i+1)
		addrs = append(addrs, netip.MustParseAddr(haproxySources[i]))
	}
	addrs = append(addrs, netip.MustParseAddr(nodeHost))
	if err := ns.AddAddresses(ctx, addrs...); err != nil {
		return Result{}, err
	}
	if err := ns.SetPortRange(ctx, cfg.PortRangeStart, cfg.PortRangeStart+cfg.Ports-1); err != nil {
		return Result{}, err
	}

	dir := filepath.Join(cfg.Dir, ns.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	_, priv, err := token.GenerateKey()
	if err != nil {
		return Result{}, err
	}
	privFile, pubFile := filepath.Join(dir, "signing.pem"), filepath.Join(dir, "signing.pub")
	if err := token.WriteKeyPair(privFile, pubFile, priv); err != nil {
		return Result{}, err
	}

	var procs procGroup
	defer procs.stop()
	nodeLog, err := procs.start(ns.Command(ctx, cfg.NodeBinary,
		"-name", nodeName,
		"-bind", net.JoinHostPort(nodeHost, strconv.Itoa(nodePort)),
		"-advertise", nodeHost,
		"-gossip-bind", net.JoinHostPort(nodeHost, strconv.Itoa(gossipPort)),
		"-dev",
		"-max-conns", strconv.Itoa(3*cfg.Ports+1000),
		"-auth-keys", pubFile,
		// One host, one clock: tokens minted right after the start count.
		"-token-leeway", "0s",
		"-log-level", "warn",
	), filepath.Join(dir, "node.log"))
	if err != nil {
		return Result{}, err
	}

	res := Result{Path: p, Ports: cfg.Ports, Target: 3 * cfg.Ports, ClientSources: len(clientSources)}
	target := net.JoinHostPort(nodeHost, strconv.Itoa(nodePort))
	var haproxyLog *syncBuffer
	haproxyLogFile := filepath.Join(dir, "haproxy.log")
	if p.SourceIPs > 0 {
		res.Mode = cfg.Mode
		hc := haproxycfg.DefaultConfig()
		hc.Backends = []haproxycfg.Backend{{Name: "node1", Address: nodeHost, Port: nodePort}}
		hc.SourceIPs = haproxySources
		hc.Bind = net.JoinHostPort(frontendHost, strconv.Itoa(frontendPort))
		hc.Mode = cfg.Mode
		// HAProxy queues connections past maxconn instead of failing
		// them; keep it above every attempt so the ports are the only
		// limit.
		hc.MaxConn = attempts + 64
		hc.TimeoutTunnel = time.Hour
		hc.HealthCheckRise = 1
		hc.Log = "stderr format raw local0"
		hc.TimeoutClientFin = 5 * time.Second
		conf, err := haproxycfg.Render(hc)
		if err != nil {
			return Result{}, err
		}
		cfgFile := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(cfgFile, []byte(conf), 0o644); err != nil {
			return Result{}, err
		}
		if haproxyLog, err = procs.start(ns.Command(ctx, cfg.HAProxyBinary, "-db", "-f", cfgFile), haproxyLogFile); err != nil {
			return Result{}, err
		}
		target = net.JoinHostPort(frontendHost, strconv.Itoa(frontendPort))
	}

	spec, err := json.Marshal(ClientSpec{
		Target:            target,
		Sources:           clientSources,
		Attempts:          attempts,
		StopAfterFailures: cfg.StopAfterFailures,
		Workers:           cfg.Workers,
		KeyFile:           privFile,
		Node:              nodeName,
		Timeout:           cfg.Timeout,
	})
	if err != nil {
		return Result{}, err
	}
	client := ns.Command(ctx, cfg.ClientCommand[0], cfg.ClientCommand[1:]...)
	client.Env = append(os.Environ(), ClientEnv+"="+string(spec))
	var stdout, stderr bytes.Buffer
	client.Stdout, client.Stderr = &stdout, &stderr
	runErr := client.Run()
	procs.stop()
	if haproxyLog != nil {
		res.HAProxyLog = haproxyLog.String()
		// Count in the file: the buffer keeps only the tail.
		full, err := os.ReadFile(haproxyLogFile)
		if err != nil {
			return res, err
		}
		res.HAProxyNoFreePorts = bytes.Count(full, []byte(noFreePorts))
	}
	if runErr != nil {
		return res, fmt.Errorf("portceiling: client: %v\nclient stderr:\n%s\nnode log:\n%s\nhaproxy log:\n%s",
			runErr, tail(stderr.String(), 2000), tail(nodeLog.String(), 2000), tail(res.HAProxyLog, 2000))
	}
	if err := json.Unmarshal(stdout.Bytes(), &res.ClientResult); err != nil {
		return res, fmt.Errorf("portceiling: client output %q: %w", tail(stdout.String(), 500), err)
	}
	return res, nil
}

// procGroup starts background processes and kills them all on stop.
type procGroup struct {
	cmds []*exec.Cmd
	done []chan struct{}
}

// start runs cmd with stdout and stderr going to a buffer and to logFile.
func (g *procGroup) start(cmd *exec.Cmd, logFile string) (*syncBuffer, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	buf := &syncBuffer{}
	w := &teeWriter{f: f, buf: buf}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("portceiling: start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	g.cmds, g.done = append(g.cmds, cmd), append(g.done, done)
	return buf, nil
}

// stop kills every process and waits for it, at most 10 s each. Safe to
// call more than once.
func (g *procGroup) stop() {
	for i, cmd := range g.cmds {
		_ = cmd.Process.Kill()
		select {
		case <-g.done[i]:
		case <-time.After(10 * time.Second):
		}
	}
	g.cmds, g.done = nil, nil
}

// Table renders results as the Markdown table in docs/benchmarks.md.
func Table(results []Result) string {
	var b strings.Builder
	b.WriteString("| path | HAProxy mode | source IPs to the node | port range | connections held | × port range | failed attempts | HAProxy \"no free ports\" |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---|---:|\n")
	for _, r := range results {
		mode, srcs, nfp := r.Mode, strconv.Itoa(r.Path.SourceIPs), strconv.Itoa(r.HAProxyNoFreePorts)
		if r.Path.SourceIPs == 0 {
			mode, srcs, nfp = "—", fmt.Sprintf("— (%d client IPs)", r.ClientSources), "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d of %d tried | %.2f | %s | %s |\n",
			r.Path, mode, srcs, r.Ports, r.Alive, r.Attempts, float64(r.Alive)/float64(r.Ports), failureSummary(r.Failures), nfp)
	}
	return b.String()
}

func failureSummary(f map[string]int) string {
	if len(f) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", f[k], k)
	}
	return strings.Join(parts, ", ")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
