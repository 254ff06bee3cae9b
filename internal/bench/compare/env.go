package compare

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// The paths clients can take to the nodes.
const (
	PathDirect      = "direct"
	PathHAProxyHTTP = "haproxy-http"
	PathHAProxyTCP  = "haproxy-tcp"
	// PathDirectTLS is direct over TLS: auth on https://, every node
	// terminating its own wss:// (certificates from a test CA, -tls files),
	// every handshake a full one.
	PathDirectTLS = "direct-tls"
	// PathDirectTLSResume is PathDirectTLS with clients that keep their
	// TLS sessions and resume them (returning clients).
	PathDirectTLSResume = "direct-tls-resume"
	// PathHAProxyTLS is HAProxy terminating TLS (bind ... ssl crt ...) in
	// mode http in front of the same nodes in plain text, with the token
	// service on https://.
	PathHAProxyTLS = "haproxy-tls"
	// PathDirectOld and PathDirectTLSOld are PathDirect and PathDirectTLS
	// on the binaries of EnvConfig.OldBinDir: an older build of the node
	// and auth measured in the same run as the current one, e.g.
	// -paths direct-old,direct.
	PathDirectOld    = "direct-old"
	PathDirectTLSOld = "direct-tls-old"
)

// PoolAudience is the token audience every node accepts on the HAProxy
// paths (wsdirect-node -token-audience), where the balancer, not auth,
// picks the node.
const PoolAudience = "haproxy-pool"

// Paths lists the plain paths, direct first (the baseline of the ratios).
var Paths = []string{PathDirect, PathHAProxyHTTP, PathHAProxyTCP}

// TLSPaths lists the TLS paths, direct-tls first (the baseline).
var TLSPaths = []string{PathDirectTLS, PathDirectTLSResume, PathHAProxyTLS}

// OldPaths are the direct paths on EnvConfig.OldBinDir's binaries.
var OldPaths = []string{PathDirectOld, PathDirectTLSOld}

// knownPath reports whether p is one of Paths, TLSPaths or OldPaths.
func knownPath(p string) bool {
	for _, k := range append(append(append([]string(nil), Paths...), TLSPaths...), OldPaths...) {
		if p == k {
			return true
		}
	}
	return false
}

// isDirect reports whether p reaches the nodes without a balancer.
func isDirect(p string) bool {
	return p == PathDirect || p == PathDirectTLS || p == PathDirectTLSResume || isOld(p)
}

// isOld reports whether p runs EnvConfig.OldBinDir's binaries.
func isOld(p string) bool { return p == PathDirectOld || p == PathDirectTLSOld }

// isTLS reports whether clients use https:// and wss:// on p.
func isTLS(p string) bool {
	return p == PathDirectTLS || p == PathDirectTLSResume || p == PathHAProxyTLS || p == PathDirectTLSOld
}

// Loopback addresses the harness uses besides localcluster's (nodes on
// 127.0.0.11+, auth on 127.0.1.10+).
var (
	haproxyIP = netip.MustParseAddr("127.0.1.30")
	// DefaultSourceIPs are the article's HAProxy "source" addresses.
	DefaultSourceIPs = []string{"127.0.1.1", "127.0.1.2", "127.0.1.3"}
)

// EnvConfig describes the servers of one path. Start from
// DefaultEnvConfig; StartEnv rejects invalid fields.
type EnvConfig struct {
	// BinDir holds wsdirect-node and wsdirect-auth. Required.
	BinDir string
	// OldBinDir holds an older build of wsdirect-node and wsdirect-auth,
	// which the paths of OldPaths run; empty when no such path runs.
	OldBinDir string
	// HAProxyBinary is haproxy; empty means haproxycfg.FindBinary().
	HAProxyBinary string
	// Nodes is the number of node processes, at least 1.
	Nodes int
	// MaxConns is every node's cap, at least 1.
	MaxConns int
	// SourceIPs are HAProxy's "source" addresses in mode http; empty
	// means one server line per node and the kernel's choice of source.
	// Mode tcp uses none, like an NLB.
	SourceIPs []string
	// HAProxyMaxConn is HAProxy's maxconn, at least 1.
	HAProxyMaxConn int
	// NodeArgs are appended to every node's flags; empty adds none.
	NodeArgs []string
	// Logf, when set, receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// DefaultEnvConfig returns the defaults; the caller sets BinDir.
func DefaultEnvConfig() EnvConfig {
	return EnvConfig{
		// Three nodes, as in the product's smallest cluster.
		Nodes: 3,
		// 19,000: under one process's 20,000 files, with room for the
		// node's other sockets.
		MaxConns: 19_000,
		// The article's setup: several source addresses per node.
		SourceIPs: append([]string(nil), DefaultSourceIPs...),
		// 9,000: every proxied connection takes two descriptors and the
		// hard limit is 20,000.
		HAProxyMaxConn: 9_000,
	}
}

// validate reports the first problem with c.
func (c *EnvConfig) validate() error {
	switch {
	case c.BinDir == "":
		return errors.New("benchcompare: BinDir is required")
	case c.Nodes < 1:
		return fmt.Errorf("benchcompare: Nodes must be at least 1, got %d", c.Nodes)
	case c.MaxConns < 1:
		return fmt.Errorf("benchcompare: MaxConns must be at least 1, got %d", c.MaxConns)
	case c.HAProxyMaxConn < 1:
		return fmt.Errorf("benchcompare: HAProxyMaxConn must be at least 1, got %d", c.HAProxyMaxConn)
	}
	return nil
}

// Env is one path's running servers: the cluster and, on the HAProxy paths,
// haproxy in front of its nodes.
type Env struct {
	Path    string
	Cluster *localcluster.Cluster
	HAProxy *HAProxy
	dir     string
	caFile  string
}

// StartEnv starts a fresh cluster (fresh processes, so that every path's
// peak RSS is its own) and, for the HAProxy paths, haproxy in front of its
// nodes, and checks one connection end to end.
func StartEnv(ctx context.Context, path string, cfg EnvConfig) (*Env, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	var mode string
	switch path {
	case PathDirect, PathDirectTLS, PathDirectTLSResume:
	case PathDirectOld, PathDirectTLSOld:
		if cfg.OldBinDir == "" {
			return nil, fmt.Errorf("benchcompare: path %s needs OldBinDir", path)
		}
		cfg.BinDir = cfg.OldBinDir
	case PathHAProxyHTTP, PathHAProxyTLS:
		mode = haproxycfg.ModeHTTP
	case PathHAProxyTCP:
		mode = haproxycfg.ModeTCP
	default:
		return nil, fmt.Errorf("benchcompare: unknown path %q (want one of %v, %v or %v)", path, Paths, TLSPaths, OldPaths)
	}
	if mode != "" && cfg.HAProxyBinary == "" {
		b, err := haproxycfg.FindBinary()
		if err != nil {
			return nil, err
		}
		cfg.HAProxyBinary = b
	}
	dir, err := os.MkdirTemp("", "wsdirect-benchcompare-")
	if err != nil {
		return nil, err
	}
	e := &Env{Path: path, dir: dir}
	lc := localcluster.DefaultConfig()
	lc.BinDir, lc.Nodes, lc.MaxConns, lc.LogLevel, lc.Logf = cfg.BinDir, cfg.Nodes, cfg.MaxConns, "warn", cfg.Logf
	lc.NodeArgs = append([]string(nil), cfg.NodeArgs...)
	// Auth serves https:// on every TLS path. The nodes terminate wss
	// themselves on the direct paths; behind HAProxy they stay plain on
	// loopback and HAProxy terminates it.
	lc.TLS, lc.NodesPlain = isTLS(path), !isDirect(path)
	var hcfg haproxycfg.Config
	if mode != "" {
		hcfg = haproxycfg.DefaultConfig()
		hcfg.Mode, hcfg.MaxConn = mode, cfg.HAProxyMaxConn
		hcfg.HealthCheckInterval, hcfg.HealthCheckRise = time.Second, 1
		if mode == haproxycfg.ModeHTTP {
			hcfg.SourceIPs = cfg.SourceIPs
		}
		if hcfg.Bind, err = freeAddr(haproxyIP); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		wsURL := "ws://" + hcfg.Bind + "/ws"
		if isTLS(path) {
			wsURL = "wss://" + hcfg.Bind + "/ws"
		}
		// HAProxy, not auth, picks the node: the same wsdirect-auth as on
		// the direct paths checks the credentials and mints the token,
		// for the audience every node behind HAProxy accepts, and sends
		// the client to HAProxy (-balancer-url).
		lc.NodeArgs = append(lc.NodeArgs, "-token-audience", PoolAudience)
		lc.AuthArgs = append(lc.AuthArgs, "-balancer-url", wsURL, "-balancer-audience", PoolAudience)
	}
	cl, err := localcluster.Start(ctx, lc)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e.Cluster = cl
	e.caFile = cl.CAFile()
	if mode == "" {
		return e, nil
	}

	for _, p := range cl.Nodes {
		ap, err := netip.ParseAddrPort(p.HTTPAddr)
		if err != nil {
			e.Stop()
			return nil, err
		}
		hcfg.Backends = append(hcfg.Backends, haproxycfg.Backend{Name: p.Name, Address: ap.Addr().String(), Port: int(ap.Port())})
	}
	if isTLS(path) {
		// HAProxy's certificate comes from the run's CA, which the
		// clients trust for auth too.
		leaf, err := cl.Issue(haproxyIP.String())
		if err != nil {
			e.Stop()
			return nil, err
		}
		hcfg.TLSCertFile = filepath.Join(e.dir, "haproxy.pem")
		if err := leaf.WriteBundle(hcfg.TLSCertFile); err != nil {
			e.Stop()
			return nil, err
		}
	}
	if e.HAProxy, err = StartHAProxy(ctx, cfg.HAProxyBinary, hcfg, dir); err != nil {
		e.Stop()
		return nil, err
	}
	// One connection end to end: auth, haproxy, a node.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var trust []client.Option
	if e.caFile != "" {
		pool, err := client.LoadRootCAs(e.caFile)
		if err != nil {
			e.Stop()
			return nil, err
		}
		trust = append(trust, client.WithRootCAs(pool))
	}
	err = probe.Poll(pctx, 10*time.Second, 100*time.Millisecond, "a connection through haproxy ("+string(mode)+")", func() error {
		conn, _, err := client.Dial(pctx, e.AuthURL(), e.Credentials(), trust...)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		e.Stop()
		return nil, fmt.Errorf("benchcompare: %w\n%s", err, e.HAProxy.Output())
	}
	cfg.Logf("haproxy (mode %s) on %s in front of %d nodes; auth sends clients to it", mode, e.HAProxy.Bind, len(cl.Nodes))
	return e, nil
}

// CAFile is the root clients of this path must trust, or "" on plain
// paths.
func (e *Env) CAFile() string { return e.caFile }

// AuthURL is where clients of this path ask for a token: wsdirect-auth,
// which sends them to a node on the direct paths and to HAProxy on the
// others.
func (e *Env) AuthURL() string { return e.Cluster.AuthURL() }

// Credentials of the bench user.
func (e *Env) Credentials() client.Credentials {
	return client.Credentials{Username: e.Cluster.Username(), Password: e.Cluster.Password()}
}

// ProcMem is one server process's peak memory.
type ProcMem struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	PeakRSS int64  `json:"peak_rss_bytes"`
}

// PeakRSS reads VmHWM of every running server process of the path.
func (e *Env) PeakRSS() []ProcMem {
	var out []ProcMem
	for _, p := range append(append([]*localcluster.Process(nil), e.Cluster.Nodes...), e.Cluster.Auths...) {
		if b, err := p.PeakRSS(); err == nil {
			out = append(out, ProcMem{Name: p.Name, PID: p.PID(), PeakRSS: b})
		}
	}
	if e.HAProxy != nil && e.HAProxy.Running() {
		if b, err := e.HAProxy.PeakRSS(); err == nil {
			out = append(out, ProcMem{Name: "haproxy", PID: e.HAProxy.PID(), PeakRSS: b})
		}
	}
	return out
}

// Stop stops everything the Env started.
func (e *Env) Stop() {
	if e.HAProxy != nil {
		_ = e.HAProxy.Kill()
	}
	if e.Cluster != nil {
		e.Cluster.Stop()
	}
	os.RemoveAll(e.dir)
}
