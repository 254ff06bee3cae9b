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
// signal exits at once. SIGHUP reloads the -auth-keys files (key rotation)
// and, with -tls files, the certificate.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/discover"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/tlscert"
	"github.com/wsdirect/terraform-provider-wsdirect/node"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	os.Exit(run(context.Background(), os.Args[1:], sigs, os.Stderr))
}

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

type options struct {
	name, bind, advertise, gossipBind, gossipAdvertise, gossipKeyFile string
	advertisePort                                                     int
	dev                                                               bool
	join                                                              listFlag
	joinEC2Tag, ec2Endpoint                                           string
	maxConns                                                          int
	authKeys                                                          listFlag
	upstream, zone, adminTokenFile                                    string
	drainDeadline                                                     time.Duration
	logLevel                                                          string
	tls                                                               *tlscert.Config
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{tls: tlscert.DefaultConfig()}
	def := node.DefaultConfig()
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("wsdirect-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.name, "name", host, "unique node id in the cluster; tokens are minted for it")
	fs.StringVar(&o.bind, "bind", "127.0.0.1:8080", "WebSocket and HTTP listen address")
	fs.StringVar(&o.advertise, "advertise", "", `public address clients dial: an IP or host name, or "auto" (EC2 IMDSv2 public-ipv4); default: the -bind host`)
	fs.IntVar(&o.advertisePort, "advertise-port", 0, "public WebSocket port clients dial (default: the -bind port)")
	fs.StringVar(&o.gossipBind, "gossip-bind", "0.0.0.0:7946", "serf gossip listen address (UDP and TCP)")
	fs.StringVar(&o.gossipAdvertise, "gossip-advertise", "", "gossip address other members use, host[:port] (default: derived from -gossip-bind)")
	fs.StringVar(&o.gossipKeyFile, "gossip-key-file", "", "file with the base64 32-byte gossip encryption key (required unless -dev)")
	fs.BoolVar(&o.dev, "dev", false, "developer mode: allow unencrypted gossip")
	fs.Var(&o.join, "join", "gossip addresses to join, host[:port] (repeatable or comma list)")
	fs.StringVar(&o.joinEC2Tag, "join-ec2-tag", "", "join the private IPs of running EC2 instances with this tag, Key=Value")
	fs.StringVar(&o.ec2Endpoint, "ec2-endpoint", "", "EC2 API endpoint override (tests, VPC endpoints)")
	fs.IntVar(&o.maxConns, "max-conns", def.MaxConns, "connection cap; upgrades beyond it get 503")
	fs.Var(&o.authKeys, "auth-keys", "PEM file or directory with the auth service's public keys (repeatable or comma list; required)")
	fs.StringVar(&o.upstream, "upstream", "", "relay each client to this ws:// app on the same host (default: built-in echo)")
	fs.StringVar(&o.zone, "zone", "", "placement hint gossiped to auth, e.g. the availability zone")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "file with the bearer token for POST /admin/drain (default: endpoint disabled)")
	fs.DurationVar(&o.drainDeadline, "drain-deadline", def.DrainDeadline, "how long a drain may take before remaining clients are cut")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	o.tls.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case o.name == "":
		return nil, errors.New("-name is required")
	case len(o.authKeys) == 0:
		return nil, errors.New("-auth-keys is required: the auth service's public key file(s)")
	case o.gossipKeyFile == "" && !o.dev:
		return nil, errors.New("-gossip-key-file is required (or -dev for unencrypted gossip on a developer machine)")
	case o.maxConns <= 0:
		return nil, fmt.Errorf("-max-conns must be > 0, got %d", o.maxConns)
	case o.drainDeadline <= 0:
		return nil, fmt.Errorf("-drain-deadline must be > 0, got %s", o.drainDeadline)
	}
	if err := o.tls.CheckFlags(o.bind, o.dev, true); err != nil {
		return nil, err
	}
	return o, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("-log-level: %w", err)
	}
	return l, nil
}

// splitHostPort parses host:port with a numeric port.
func splitHostPort(flagName, v string) (string, int, error) {
	host, p, err := net.SplitHostPort(v)
	if err != nil {
		return "", 0, fmt.Errorf("-%s %q: %w", flagName, v, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("-%s %q: bad port", flagName, v)
	}
	return host, port, nil
}

// run is main without the process: it returns the exit code. sigs delivers
// SIGTERM/SIGINT (drain and exit) and SIGHUP (reload keys).
func run(ctx context.Context, args []string, sigs <-chan os.Signal, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "wsdirect-node:", err)
		return 2
	}
	level, err := parseLevel(o.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "wsdirect-node:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})).With("node", o.name)
	if err := serve(ctx, o, sigs, log); err != nil {
		log.Error("exiting", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, o *options, sigs <-chan os.Signal, log *slog.Logger) error {
	limit, known := openFileLimit()
	checkFileLimit(log, o.maxConns, limit, known)
	keys, err := token.LoadKeySet(o.authKeys...)
	if err != nil {
		return fmt.Errorf("-auth-keys: %w", err)
	}
	var adminToken string
	if o.adminTokenFile != "" {
		b, err := os.ReadFile(o.adminTokenFile)
		if err != nil {
			return fmt.Errorf("-admin-token-file: %w", err)
		}
		if adminToken = strings.TrimSpace(string(b)); adminToken == "" {
			return fmt.Errorf("-admin-token-file %s is empty", o.adminTokenFile)
		}
	}
	var gossipKey []byte
	if o.gossipKeyFile != "" {
		if gossipKey, err = cluster.LoadKeyFile(o.gossipKeyFile); err != nil {
			return err
		}
	}
	if o.joinEC2Tag != "" {
		if _, _, err := discover.ParseTag(o.joinEC2Tag); err != nil {
			return fmt.Errorf("-join-ec2-tag: %w", err)
		}
	}
	bindHost, bindPort, err := splitHostPort("bind", o.bind)
	if err != nil {
		return err
	}
	gHost, gPort, err := splitHostPort("gossip-bind", o.gossipBind)
	if err != nil {
		return err
	}
	var gAdvHost string
	var gAdvPort int
	if o.gossipAdvertise != "" {
		gAdvHost, gAdvPort = o.gossipAdvertise, 0
		if h, p, err := net.SplitHostPort(o.gossipAdvertise); err == nil {
			if gAdvPort, err = strconv.Atoi(p); err != nil {
				return fmt.Errorf("-gossip-advertise %q: bad port", o.gossipAdvertise)
			}
			gAdvHost = h
		}
	}

	// Listen before announcing ourselves, so a node that cannot serve
	// never shows up in the cluster.
	ln, err := net.Listen("tcp", o.bind)
	if err != nil {
		return err
	}
	defer ln.Close()
	if bindPort == 0 {
		bindPort = ln.Addr().(*net.TCPAddr).Port
	}

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
	tc.ListenAddr = ln.Addr().String()
	tc.Logger, tc.Registry = log, reg
	if tc.Tickets == tlscert.TicketsCluster {
		if gossipKey == nil {
			tc.Tickets = tlscert.TicketsProcess // -dev without a key: nothing shared to derive from
		}
		tc.TicketSecret = gossipKey
	}
	certs, err := tlscert.New(&tc)
	if err != nil {
		return err
	}
	defer certs.Close()

	cc := cluster.DefaultConfig()
	cc.Name = o.name
	cc.Role = cluster.RoleNode
	cc.BindAddr, cc.BindPort = gHost, gPort
	cc.AdvertiseAddr, cc.AdvertisePort = gAdvHost, gAdvPort
	cc.PublicAddr, cc.WSPort = public, wsPort
	cc.WSScheme = certs.Scheme()
	// Joined not ready until a certificate is in place: auth sees the node
	// but assigns it nobody.
	cc.NotReady = certs.Ready() != nil
	cc.Cap = o.maxConns
	cc.Zone = o.zone
	cc.SecretKey = gossipKey
	cc.Dev = o.dev
	cc.Logger = log.With("component", "cluster")
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
	nc.Upstream = o.upstream
	nc.DrainDeadline = o.drainDeadline
	nc.AdminToken = adminToken
	nc.Logger = log
	nc.Registry = reg
	verifier := token.NewVerifier(o.name, keys)
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
	go func() { serveErr <- srv.Serve(certs.Listener(ln)) }()
	// After the TLS listener serves: it answers tls-alpn-01 challenges.
	if err := certs.Start(ctx, tlscert.HealthOnly(n.Handler())); err != nil {
		return err
	}
	log.Info("serving", "bind", ln.Addr().String(), "url", cluster.Member{Addr: public, Port: wsPort, Scheme: certs.Scheme()}.URL(),
		"tls", string(certs.Mode()), "gossip", cl.GossipAddr(), "max_conns", o.maxConns, "upstream", o.upstream, "keys", keys.IDs())

	joinCtx, stopJoin := context.WithCancel(ctx)
	defer stopJoin()
	if len(o.join) > 0 || o.joinEC2Tag != "" {
		go joinLoop(joinCtx, o, cl, log)
	}

	// Wait for a reason to stop.
	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-n.Drained():
		log.Info("drained via admin endpoint; leaving")
	case <-ctx.Done():
	case <-waitStop(sigs, verifier, o.authKeys, certs, log):
		log.Info("signal received; draining", "deadline", o.drainDeadline)
		drainCtx, cancel := context.WithTimeout(ctx, o.drainDeadline)
		drained := make(chan error, 1)
		go func() { drained <- n.Drain(drainCtx) }()
		select {
		case err := <-drained:
			if err != nil {
				log.Warn("drain incomplete", "err", err)
			}
		case <-waitStop(sigs, verifier, o.authKeys, certs, log):
			log.Warn("second signal: exiting without finishing the drain")
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
			log.Warn("cluster leave", "err", err)
		}
	case <-time.After(10 * time.Second):
		log.Warn("cluster leave timed out")
	}
	left = true
	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx) // hijacked WebSockets are not waited for
	if err := n.Close(); err != nil {
		log.Warn("close", "err", err)
	}
	log.Info("stopped")
	return nil
}

// waitStop returns a channel that fires on SIGTERM/SIGINT, reloading the
// auth keys and the TLS certificate files on each SIGHUP meanwhile.
func waitStop(sigs <-chan os.Signal, v *token.Verifier, paths []string, certs *tlscert.Manager, log *slog.Logger) <-chan struct{} {
	stop := make(chan struct{})
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				if err := certs.Reload(); err != nil {
					log.Error("SIGHUP: keeping the old TLS certificate", "err", err)
				}
				keys, err := token.LoadKeySet(paths...)
				if err != nil {
					log.Error("SIGHUP: keeping the old auth keys", "err", err)
					continue
				}
				v.SetKeys(keys)
				log.Info("SIGHUP: auth keys reloaded", "keys", keys.IDs())
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

// joinLoop joins the cluster, retrying with backoff until some member
// answers: at boot the others may not be up yet, and EC2 tag lookups may
// see instances still starting.
func joinLoop(ctx context.Context, o *options, cl *cluster.Cluster, log *slog.Logger) {
	backoff := time.Second
	for {
		addrs := append([]string(nil), o.join...)
		if o.joinEC2Tag != "" {
			ips, err := ec2TagAddrs(ctx, o)
			if err != nil {
				log.Warn("EC2 tag lookup failed", "tag", o.joinEC2Tag, "err", err)
			}
			addrs = append(addrs, ips...)
		}
		if len(addrs) > 0 {
			n, err := cl.Join(addrs)
			if err == nil {
				log.Info("joined", "contacted", n)
				return
			}
			log.Warn("join failed; retrying", "err", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func ec2TagAddrs(ctx context.Context, o *options) ([]string, error) {
	key, value, err := discover.ParseTag(o.joinEC2Tag)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	client, err := discover.NewEC2Client(ctx, o.ec2Endpoint)
	if err != nil {
		return nil, err
	}
	return discover.EC2Tag(ctx, client, key, value)
}
