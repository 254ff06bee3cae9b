// Command wsdirect-node serves WebSocket clients that the wsdirect auth
// service assigned to it (package node), and publishes its live connection
// count to the cluster over encrypted serf gossip (package cluster).
//
//	wsdirect-node -name node-1 -bind 0.0.0.0:443 -advertise auto -tls acme \
//	    -gossip-key-file /etc/wsdirect/gossip.key -auth-keys /etc/wsdirect/signing.pub \
//	    -join-ec2-tag wsdirect-cluster=prod -max-conns 18000
//
// With -tls files or -tls acme the node serves wss:// (see internal/tlscert
// for the flags, shared with wsdirect-auth) and advertises it; until it
// holds a valid certificate it stays in the cluster marked not ready, so
// auth assigns it nobody, and /readyz says why. Plain ws:// on an address
// other than loopback needs -tls offload (TLS terminated in front) or -dev.
//
// SIGTERM or SIGINT (or POST /admin/drain) drains the node: it stops taking
// assignments, closes its clients in batches with "reconnect elsewhere",
// leaves the cluster gracefully and exits within -drain-deadline. A second
// signal exits at once.
//
// A node holding more than its share of the cluster's clients (after a node
// joined, say) moves the excess to nodes with fewer, paced so that the
// whole cluster moves at most -rebalance-max-rate a second
// (docs/design.md section 15); -rebalance=false switches it off.
//
// -gossip-key-file, -admin-token-file and -auth-keys take files or AWS
// Systems Manager parameters (ssm:///path/name, read with the instance
// role; package internal/secret). SIGHUP re-reads all of them (key
// rotation), and with -tls files the certificate; one that fails keeps its
// previous value.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/discover"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/gossipcli"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/secret"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/tlscert"
	"github.com/wsdirect/terraform-provider-wsdirect/node"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
		go tuneGC(context.Background(), gcPercent, time.Second)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	os.Exit(run(context.Background(), os.Args[1:], sigs, os.Stderr))
}

type options struct {
	name, bind, advertise string
	advertisePort         int
	gossip                gossipcli.Flags
	maxConns              int
	maxConnsPerUser       int
	authKeys              gossipcli.ListFlag
	upstream, zone        string
	waitingReads          bool
	releaseMemoryAfter    time.Duration
	adminTokenFile        string
	tokenAudience         string
	drainDeadline         time.Duration
	drainRate             float64
	tokenLeeway           time.Duration
	rebalance             node.RebalanceConfig
	tls                   *tlscert.Config
}

const usageHead = `usage: wsdirect-node [flags]

Serves the WebSocket clients the auth service assigns to this node and
gossips its live connection count. SIGTERM or SIGINT drains and exits.
-gossip-key-file, -admin-token-file and -auth-keys are files or AWS Systems
Manager parameters, ssm:///path/name, read with the instance role; SIGHUP
re-reads them all, and with -tls files the certificate.

flags:
`

// Bad command lines exit with status 2: errFlagParse when the flag package
// has printed the fault (gossipcli.Parse), a usageError for a bad
// combination or value found after parsing.
var errFlagParse = errors.New("invalid flags")

type usageError struct{ error }

// parseFlags parses and checks the command line. flag.ErrHelp means -h:
// the usage is printed.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{tls: tlscert.DefaultConfig()}
	def := node.DefaultConfig()
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("wsdirect-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.name, "name", host, "unique node id in the cluster; tokens are minted for it")
	fs.StringVar(&o.bind, "bind", "127.0.0.1:8080", "WebSocket and HTTP listen address, host:port")
	fs.StringVar(&o.advertise, "advertise", "", `public address clients dial: an IP or host name, or "auto" (EC2 IMDSv2 public-ipv4); default: the -bind host`)
	fs.IntVar(&o.advertisePort, "advertise-port", 0, "public WebSocket port clients dial (default: the -bind port)")
	o.gossip.Register(fs)
	fs.IntVar(&o.maxConns, "max-conns", def.MaxConns, "connection cap; upgrades beyond it get 503")
	fs.IntVar(&o.maxConnsPerUser, "max-conns-per-user", def.MaxConnsPerUser, "open connections one user may hold on this node; more get 429 (0: no limit)")
	fs.Var(&o.authKeys, "auth-keys", "PEM `file`, directory or ssm:///parameter with the auth service's public keys (repeatable or comma list; required)")
	fs.StringVar(&o.upstream, "upstream", "", "relay each client to this ws:// app on the same host (default: built-in echo)")
	fs.DurationVar(&o.releaseMemoryAfter, "release-memory-after", def.ReleaseMemory.After, "once this long has passed without a burst of connects or disconnects (at least 1,000 since the last release), collect and return freed memory to the OS; 0 never")
	fs.BoolVar(&o.waitingReads, "waiting-reads", false, "give every connection a goroutine waiting in its read instead of reading it when it has data: about 6 KB more per idle connection, less CPU per message when connections are rarely silent")
	fs.StringVar(&o.zone, "zone", "", "placement hint gossiped to auth, e.g. the availability zone")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "`file or ssm:///parameter` with the bearer token for POST /admin/drain (default: endpoint disabled)")
	fs.DurationVar(&o.drainDeadline, "drain-deadline", def.DrainDeadline, "how long a drain may take before remaining clients are cut (keep it 30 s under systemd's TimeoutStopSec)")
	fs.Float64Var(&o.drainRate, "drain-rate", float64(def.DrainBatch)/def.DrainInterval.Seconds(), "clients a drain closes per second, in steps of at most 100 ms, so they come back to auth at a pace it takes (all nodes of a rolling replacement drain at once)")
	o.rebalance = def.Rebalance
	fs.BoolVar(&o.rebalance.Enabled, "rebalance", def.Rebalance.Enabled, "move clients to nodes with fewer when this node holds more than its share (e.g. after a node joined)")
	fs.Float64Var(&o.rebalance.MaxRate, "rebalance-max-rate", def.Rebalance.MaxRate, "clients moved per second across the whole cluster, and so auth requests a rebalance causes; give every node the same value")
	fs.Float64Var(&o.rebalance.Tolerance, "rebalance-tolerance", def.Rebalance.Tolerance, "move clients only when holding more than (1 + this) times the node's share; then move down to the share")
	fs.IntVar(&o.rebalance.MinMove, "rebalance-min-move", def.Rebalance.MinMove, "fewest excess clients worth moving")
	fs.StringVar(&o.tokenAudience, "token-audience", "", "token audience this node accepts (default: -name, the audience auth mints for it); set a shared one only behind a balancer that picks the node, where a token is good once on each node sharing it")
	fs.DurationVar(&o.tokenLeeway, "token-leeway", token.DefaultLeeway, "clock skew tolerated between auth and node hosts for token times; tokens issued before the node started plus this are refused")
	o.tls.RegisterFlags(fs)
	if err := gossipcli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errFlagParse
	}
	if err := o.check(fs); err != nil {
		return nil, usageError{err}
	}
	return o, nil
}

func (o *options) check(fs *flag.FlagSet) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	case o.name == "":
		return errors.New("-name is required")
	case len(o.authKeys) == 0:
		return errors.New("-auth-keys is required: the auth service's public key file(s)")
	case o.releaseMemoryAfter < 0:
		return fmt.Errorf("-release-memory-after must not be negative (0: never), got %s", o.releaseMemoryAfter)
	case o.maxConns <= 0:
		return fmt.Errorf("-max-conns must be > 0, got %d", o.maxConns)
	case o.maxConnsPerUser < 0:
		return fmt.Errorf("-max-conns-per-user must be >= 0, got %d", o.maxConnsPerUser)
	case o.tokenLeeway < 0:
		return fmt.Errorf("-token-leeway must be >= 0, got %s", o.tokenLeeway)
	case o.drainDeadline <= 0:
		return fmt.Errorf("-drain-deadline must be > 0, got %s", o.drainDeadline)
	case !(o.drainRate >= 1):
		return fmt.Errorf("-drain-rate must be >= 1, got %g", o.drainRate)
	case o.rebalance.Enabled && !(o.rebalance.MaxRate >= 1):
		return fmt.Errorf("-rebalance-max-rate must be >= 1, got %g", o.rebalance.MaxRate)
	case o.rebalance.Enabled && !(o.rebalance.Tolerance >= 0 && o.rebalance.Tolerance < 1):
		return fmt.Errorf("-rebalance-tolerance must be in [0, 1), got %g", o.rebalance.Tolerance)
	case o.rebalance.Enabled && o.rebalance.MinMove < 1:
		return fmt.Errorf("-rebalance-min-move must be >= 1, got %d", o.rebalance.MinMove)
	}
	if _, _, err := net.SplitHostPort(o.bind); err != nil {
		return fmt.Errorf("-bind: %w", err)
	}
	if err := secret.CheckRef("-admin-token-file", o.adminTokenFile); err != nil {
		return err
	}
	for _, k := range o.authKeys {
		if err := secret.CheckRef("-auth-keys", k); err != nil {
			return err
		}
	}
	if err := o.gossip.Validate(); err != nil {
		return err
	}
	return o.tls.CheckFlags(o.bind, o.gossip.Dev, true)
}

// run is main without the process: it returns the exit code. sigs delivers
// SIGTERM/SIGINT (drain and exit) and SIGHUP (reload keys).
func run(ctx context.Context, args []string, sigs <-chan os.Signal, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFlagParse):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "wsdirect-node: %v\n(wsdirect-node -h lists the flags)\n", err)
		return 2
	}
	log := o.gossip.Logger(stderr)
	if err := serve(ctx, o, sigs, log); err != nil {
		log.Error("exiting", "node", o.name, "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, o *options, sigs <-chan os.Signal, log *slog.Logger) error {
	// The node and cluster packages label their own lines (node=, and
	// component=cluster member=); this command's lines carry node= too.
	mlog := log.With("node", o.name)
	// Tokens issued before this moment (plus the clock-skew leeway) may have
	// been used by this node's previous process; see
	// token.Verifier.RejectIssuedBefore.
	started := time.Now()
	limit, known := openFileLimit()
	checkFileLimit(mlog, o.maxConns, limit, known)
	keys, err := loadAuthKeys(o.authKeys)
	if err != nil {
		return err
	}
	var adminToken string
	if o.adminTokenFile != "" {
		if adminToken, err = secret.Read("-admin-token-file", o.adminTokenFile); err != nil {
			return err
		}
	}
	cc, err := o.gossip.ClusterConfig(o.name, cluster.RoleNode, log)
	if err != nil {
		return err
	}
	jc, err := o.gossip.JoinConfig(ctx, mlog)
	if err != nil {
		return err
	}
	bindHost, _, err := net.SplitHostPort(o.bind)
	if err != nil {
		return fmt.Errorf("-bind: %w", err)
	}

	// Listen before announcing ourselves, so a node that cannot serve
	// never shows up in the cluster.
	ln, err := net.Listen("tcp", o.bind)
	if err != nil {
		return err
	}
	defer ln.Close()
	bindPort := ln.Addr().(*net.TCPAddr).Port

	public, err := advertiseAddr(ctx, o.advertise, bindHost)
	if err != nil {
		return err
	}
	wsPort := o.advertisePort
	if wsPort == 0 {
		wsPort = bindPort
	}

	// The certificate is for the address clients are sent to, unless the
	// operator names others.
	reg := prometheus.NewRegistry()
	tc := *o.tls
	if len(tc.Names) == 0 && tc.Mode.ServesTLS() {
		tc.Names = []string{public}
	}
	if tlscert.AutoNames(tc.Names) {
		ip, err := discover.WaitPublicIPv4(ctx, nil, time.Second, 15*time.Second, 10*time.Minute, mlog)
		if err != nil {
			return fmt.Errorf("-tls-names auto: %w", err)
		}
		tc.Names = []string{ip}
	}
	tc.ListenAddr = ln.Addr().String()
	tc.Logger, tc.Registry = mlog, reg
	if tc.Tickets == tlscert.TicketsCluster {
		if cc.SecretKey == nil {
			tc.Tickets = tlscert.TicketsProcess // -dev without a key: nothing shared to derive from
		}
		tc.TicketSecret = cc.SecretKey
	}
	certs, err := tlscert.New(&tc)
	if err != nil {
		return err
	}
	defer certs.Close()

	cc.PublicAddr, cc.WSPort = public, wsPort
	cc.WSScheme = certs.Scheme()
	// Joined not ready until a certificate is in place: auth sees the node
	// but assigns it nobody.
	cc.NotReady = certs.Ready() != nil
	cc.Cap = o.maxConns
	cc.Zone = o.zone
	cl, err := cluster.Create(cc)
	if err != nil {
		return err
	}
	left := false
	defer func() {
		if !left {
			_ = cl.Shutdown()
		}
	}()

	nc := node.DefaultConfig()
	nc.Name = o.name
	nc.MaxConns = o.maxConns
	nc.MaxConnsPerUser = o.maxConnsPerUser
	nc.Upstream = o.upstream
	nc.WaitingReads = o.waitingReads
	nc.ReleaseMemory.After = o.releaseMemoryAfter
	nc.DrainDeadline = o.drainDeadline
	nc.DrainBatch, nc.DrainInterval = drainSteps(o.drainRate)
	nc.AdminToken = adminToken
	nc.Rebalance = o.rebalance
	nc.View = cl
	nc.Logger = log
	nc.Registry = reg
	audience := o.tokenAudience
	if audience == "" {
		audience = o.name
	}
	verifier := token.NewVerifier(audience, keys).WithLeeway(o.tokenLeeway)
	verifier.RejectIssuedBefore(started.Add(o.tokenLeeway))
	n, err := node.New(nc, verifier, cl)
	if err != nil {
		return err
	}
	certs.Watch(func(notReady error) {
		if notReady != nil {
			n.SetNotReady("TLS: " + notReady.Error())
		} else {
			n.SetNotReady("")
		}
	})
	srv := n.HTTPServer(o.bind)
	serveErr := make(chan error, 1)
	// node.Listener lets the node tell when a read emptied a socket under
	// crypto/tls (docs/design.md section 7).
	go func() { serveErr <- srv.Serve(certs.Listener(node.Listener(ln))) }()
	// After the TLS listener serves: it answers tls-alpn-01 challenges.
	if err := certs.Start(ctx, tlscert.HealthOnly(n.Handler())); err != nil {
		return err
	}
	mlog.Info("serving", "bind", ln.Addr().String(), "url", cluster.Member{Addr: public, Port: wsPort, Scheme: certs.Scheme()}.URL(),
		"tls", string(certs.Mode()), "gossip", cl.GossipAddr(), "max_conns", o.maxConns, "upstream", o.upstream, "keys", keys.IDs())

	joinCtx, stopJoin := context.WithCancel(ctx)
	defer stopJoin()
	// The node joins at once, not ready until it accepts tokens (node.New:
	// those issued before its start plus the leeway are refused), so auth
	// sends it nobody before then.
	go func() {
		_ = gossipcli.Join(joinCtx, cl, jc) // logs its own progress
	}()

	// Wait for a reason to stop.
	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-n.Drained():
		mlog.Info("drained via admin endpoint; leaving")
	case <-ctx.Done():
	case <-waitStop(sigs, func() { reload(o, verifier, cl, n, certs, mlog) }):
		mlog.Info("signal received; draining", "deadline", o.drainDeadline)
		drainCtx, cancel := context.WithTimeout(ctx, o.drainDeadline)
		drained := make(chan error, 1)
		go func() { drained <- n.Drain(drainCtx) }()
		select {
		case err := <-drained:
			if err != nil {
				mlog.Warn("drain incomplete", "err", err)
			}
		case <-waitStop(sigs, func() { reload(o, verifier, cl, n, certs, mlog) }):
			mlog.Warn("second signal: exiting without finishing the drain")
		}
		cancel()
	}
	stopJoin()

	// Leave gracefully, but never past a bounded wait.
	leaveDone := make(chan error, 1)
	go func() { leaveDone <- cl.Leave() }()
	select {
	case err := <-leaveDone:
		if err != nil {
			mlog.Warn("cluster leave", "err", err)
		}
	case <-time.After(10 * time.Second):
		mlog.Warn("cluster leave timed out")
	}
	left = true
	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx) // hijacked WebSockets are not waited for
	if err := n.Close(); err != nil {
		mlog.Warn("close", "err", err)
	}
	mlog.Info("stopped")
	return nil
}

// waitStop returns a channel that fires on SIGTERM/SIGINT, calling reload
// on each SIGHUP meanwhile.
func waitStop(sigs <-chan os.Signal, reload func()) <-chan struct{} {
	stop := make(chan struct{})
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				reload()
				continue
			}
			close(stop)
			return
		}
	}()
	return stop
}

// advertiseAddr resolves -advertise: "auto" asks EC2 IMDSv2, a literal is
// validated, and empty falls back to the -bind host when that is a real
// address.
func advertiseAddr(ctx context.Context, flagValue, bindHost string) (string, error) {
	if flagValue == "" {
		ip := net.ParseIP(bindHost)
		if bindHost == "" || (ip != nil && ip.IsUnspecified()) {
			return "", fmt.Errorf("-advertise is required when -bind listens on all interfaces (%q)", bindHost)
		}
		flagValue = bindHost
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addr, err := discover.Advertise(ctx, flagValue, nil) // nil: default IMDS client for "auto"
	if err != nil {
		return "", fmt.Errorf("-advertise: %w", err)
	}
	return addr, nil
}

// drainSteps turns a drain rate into the node's batch and pause: a batch
// every 100 ms, or one client at a time below 10 a second.
func drainSteps(rate float64) (int, time.Duration) {
	if rate >= 10 {
		return int(math.Round(rate / 10)), 100 * time.Millisecond
	}
	return 1, time.Duration(float64(time.Second) / rate)
}
