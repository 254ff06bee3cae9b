// Command wsdirect-bench load-tests wsdirect through its real client flow
// (auth request, then WebSocket upgrade to the assigned node) and runs the
// `make demo` story on a local cluster.
//
//	wsdirect-bench run -auth http://127.0.0.1:8443 -user bench -conns 10000 -rate 2000 ...
//	wsdirect-bench demo -bin-dir ./bin
//	wsdirect-bench tfdemo -terraform ./bin/terraform
//	wsdirect-bench cluster -bin-dir ./bin -nodes 3
//	wsdirect-bench rebalance -bin-dir ./bin -clients 12000
//	wsdirect-bench fleetop -terraform ./bin/terraform -op upgrade -clients 6000
//	wsdirect-bench idle -node-old-rev 6f7f11d -plot docs/img/idle.png
//	wsdirect-bench worker   (internal: one worker process of `run -workers N`)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/compare"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/idleconn"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
)

const usage = `usage: wsdirect-bench <command> [flags]

commands:
  run     open connections through auth at a target rate and report
  demo    local cluster, 10,000 clients, kill a node, watch them move (make demo)
  tfdemo  terraform apply, scale and destroy modules/cluster on the local cloud (make demo-terraform)
  cluster start a local cluster (auth + nodes on loopback) and keep it up until interrupted
  scale   hold many connections over a local cluster; per-node counts, memory, limits set and hit
  compare same workload via direct, HAProxy mode http and mode tcp; ratios to direct (make bench-compare)
  drill   kill|drain|auth-restart|haproxy-kill: scripted failure drills with managed clients
  rebalance  scale-out under held clients: how the old nodes move the new one its share (make bench-rebalance)
  fleetop    rolling upgrade or scale-in through terraform apply under held clients (make bench-upgrade-terraform)
  idle    idle connections held by wsdirect-node (ws, wss), a bare gorilla and an nbio echo: memory, accept CPU, slab (make bench-idle)
  worker  one worker process of "run -workers N" (config on stdin, report on stdout)

"wsdirect-bench <command> -h" lists a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := exitCode(realMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a bad command line: exit status 2. printed means the flag
// package has already shown the fault and the usage.
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode reports err on stderr unless it was already shown and returns
// the exit status: 0 for success and -h, 2 for a bad command line, 1 for a
// failure.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if !ue.printed {
			fmt.Fprintln(stderr, "wsdirect-bench:", err)
		}
		return 2
	default:
		fmt.Fprintln(stderr, "wsdirect-bench:", err)
		return 1
	}
}

// newFlagSet returns a command's flag set: errors and usage go to stderr,
// and -h says what the command does before listing its flags.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wsdirect-bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: wsdirect-bench %s [flags]\n\n%s\n\nflags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs: flag.ErrHelp for -h (usage printed), a
// usageError for what the flag package rejects or for stray arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err: err, printed: true}
	}
	if fs.NArg() > 0 {
		return usageError{err: fmt.Errorf("unexpected arguments %q (%s -h lists the flags)", fs.Args(), fs.Name())}
	}
	return nil
}

func realMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{err: errors.New("missing command")}
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "tfdemo":
		return tfdemoCmd(ctx, args[1:], stdout, stderr)
	case "cluster":
		return clusterCmd(ctx, args[1:], stdout, stderr)
	case "scale":
		return scaleCmd(ctx, args[1:], stdout, stderr)
	case "compare":
		return compareCmd(ctx, args[1:], stdout, stderr)
	case "drill":
		return drillCmd(ctx, args[1:], stdout, stderr)
	case "rebalance":
		return rebalanceCmd(ctx, args[1:], stdout, stderr)
	case "fleetop":
		return fleetopCmd(ctx, args[1:], stdout, stderr)
	case "idle":
		return idleCmd(ctx, args[1:], stdout, stderr)
	case idleconn.ClientCommand:
		return idleconn.RunClient(ctx, stdin, stdout)
	case idleconn.ServerCommand:
		return idleconn.RunServer(ctx, args[1:], stdin, stdout)
	case compare.FleetWorkerCommand:
		return compare.RunFleetWorker(ctx, stdin, stdout)
	case loadtest.WorkerCommand:
		return loadtest.RunWorker(ctx, stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{err: fmt.Errorf("unknown command %q", args[0])}
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "Opens connections through auth at a target rate and reports.", stderr)
	var (
		cfg       = loadtest.DefaultConfig()
		sourceIPs string
		workers   int
		asJSON    bool
	)
	fs.StringVar(&cfg.AuthURL, "auth", "http://127.0.0.1:8443", "auth service base URL")
	fs.StringVar(&cfg.Username, "user", "bench", "user name")
	fs.StringVar(&cfg.Password, "password", "", "password (default: $WSDIRECT_PASSWORD, which stays out of ps)")
	fs.StringVar(&cfg.BearerToken, "bearer-token", "", "bearer token for JWKS/callback auth backends (default: $WSDIRECT_BEARER_TOKEN)")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections to open")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "target connect rate per second (0 = as fast as -concurrency allows)")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "handshakes in flight at most")
	fs.StringVar(&sourceIPs, "source-ips", "", "local source addresses bound round-robin, e.g. 127.0.0.2-127.0.0.9,127.0.0.20")
	fs.Float64Var(&cfg.MsgRate, "msg-rate", 0, "messages per second per connection (0 = idle); round trips are measured")
	fs.IntVar(&cfg.MsgSize, "msg-size", cfg.MsgSize, "message size in bytes (>= 8)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send messages, with -msg-rate")
	fs.DurationVar(&cfg.Hold, "hold", 0, "keep connections open this long after connecting")
	fs.DurationVar(&cfg.HandshakeTimeout, "timeout", cfg.HandshakeTimeout, "timeout of one auth request + upgrade")
	fs.BoolVar(&cfg.TokenInSubprotocol, "token-in-subprotocol", false, "send the token in Sec-WebSocket-Protocol instead of ?token=")
	fs.IntVar(&cfg.BufferSize, "buffer-size", cfg.BufferSize, "client read/write buffer size per connection")
	fs.StringVar(&cfg.CAFile, "ca-file", "", "PEM file or bundle of CAs to trust for https:// auth and wss:// nodes (default: system roots)")
	fs.BoolVar(&cfg.TLSResume, "tls-resume", false, "keep TLS sessions and resume them (as returning clients do)")
	fs.BoolVar(&cfg.FreshAuthConns, "fresh-auth-conns", false, "a new connection to auth for every connect, as distinct clients have (no keep-alive)")
	fs.BoolVar(&cfg.ClassicKeyExchange, "classic-kex", false, "offer classical TLS key shares only (X25519), no post-quantum one")
	fs.IntVar(&workers, "workers", 1, "worker processes (each holds conns/workers; one process may open at most 20,000 files)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Password == "" {
		cfg.Password = os.Getenv("WSDIRECT_PASSWORD")
	}
	if cfg.BearerToken == "" {
		cfg.BearerToken = os.Getenv("WSDIRECT_BEARER_TOKEN")
	}
	if cfg.MsgRate == 0 {
		cfg.Duration = 0
	}
	ips, err := loadtest.ParseSourceIPs(sourceIPs)
	if err != nil {
		return err
	}
	cfg.SourceIPs = ips

	var rep *loadtest.Report
	if workers > 1 {
		exe, eerr := os.Executable()
		if eerr != nil {
			return eerr
		}
		rep, err = loadtest.RunWorkers(ctx, cfg, workers, exe, stderr)
	} else {
		rep, err = loadtest.Run(ctx, cfg, stderr)
	}
	if rep != nil {
		if eerr := printResult(stdout, asJSON, rep); eerr != nil {
			return eerr
		}
	}
	if err != nil {
		return err
	}
	if rep.Connected < rep.Target {
		return fmt.Errorf("%d of %d connections failed", rep.Target-rep.Connected, rep.Target)
	}
	return nil
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "Starts a local cluster, connects 10,000 clients, kills a node and watches them move (make demo).", stderr)
	var (
		cfg      = loadtest.DefaultDemoConfig()
		keepLogs bool
	)
	fs.StringVar(&cfg.BinDir, "bin-dir", "./bin", "directory with wsdirect-node and wsdirect-auth")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "node processes")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "clients to connect (one process: keep under 19,000)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "target connect rate per second")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", cfg.ConnectTimeout, "deadline for all clients to connect")
	fs.DurationVar(&cfg.ReconnectTimeout, "reconnect-timeout", cfg.ReconnectTimeout, "deadline for the killed node's clients to reconnect elsewhere")
	fs.BoolVar(&keepLogs, "keep-logs", false, "keep the cluster's keys and logs directory")
	plain := fs.Bool("plain", false, "plain http:// and ws:// on loopback instead of TLS from a local test CA")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Cluster.TLS = !*plain
	cfg.Out = stdout
	cfg.Cluster.KeepDir = keepLogs
	if keepLogs {
		cfg.Cluster.Logf = func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }
	}
	_, err := loadtest.Demo(ctx, cfg)
	return err
}

func clusterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster", "Starts a local cluster (auth + nodes on loopback) and keeps it up until interrupted.", stderr)
	cfg := localcluster.DefaultConfig()
	fs.StringVar(&cfg.BinDir, "bin-dir", "./bin", "directory with wsdirect-node and wsdirect-auth")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "node processes")
	fs.IntVar(&cfg.Auths, "auths", cfg.Auths, "auth processes")
	fs.IntVar(&cfg.MaxConns, "max-conns", 19000, "per-node connection cap")
	fs.StringVar(&cfg.Password, "password", "", "bench user's password (default: random, printed)")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for keys and logs (default: a temporary one, removed on exit)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level of every process")
	fs.BoolVar(&cfg.TLS, "tls", true, "serve auth on https:// and nodes on wss:// with certificates from a local test CA (its root is ca.pem in -dir)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.KeepDir = cfg.Dir != ""
	cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	c, err := localcluster.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Stop()
	ws := "ws"
	if cfg.TLS {
		ws = "wss"
	}
	for i, p := range c.Auths {
		fmt.Fprintf(stdout, "%s\t%s\tpid %d\n", p.Name, c.AuthURLs()[i], p.PID())
	}
	for _, p := range c.Nodes {
		fmt.Fprintf(stdout, "%s\t%s://%s/ws\tpid %d\n", p.Name, ws, p.HTTPAddr, p.PID())
	}
	fmt.Fprintf(stdout, "user %s, password %s, admin token %s, dir %s\n", c.Username(), c.Password(), c.AdminToken(), c.Dir())
	caFlag := ""
	if f := c.CAFile(); f != "" {
		fmt.Fprintf(stdout, "TLS: certificates from a local test CA made for this run, trusted by nothing else: %s\n", f)
		caFlag = " -ca-file " + f
	}
	fmt.Fprintf(stdout, "try: WSDIRECT_PASSWORD=%s wsdirect-bench run -auth %s%s -conns 1000\n", c.Password(), c.AuthURL(), caFlag)
	fmt.Fprintln(stdout, "interrupt (Ctrl-C) to stop")
	<-ctx.Done()
	return nil
}

// saveAndPrint writes r as indented JSON to the file out (unless out is
// empty), then prints it (printResult).
func saveAndPrint(w io.Writer, out string, asJSON bool, r interface{ WriteTable(io.Writer) }) error {
	if out != "" {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return printResult(w, asJSON, r)
}

// printResult prints r as indented JSON, or as its table for people.
func printResult(w io.Writer, asJSON bool, r interface{ WriteTable(io.Writer) }) error {
	if !asJSON {
		r.WriteTable(w)
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
