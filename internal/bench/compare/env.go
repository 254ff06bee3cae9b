package compare

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// The three paths clients can take to the nodes.
const (
	PathDirect      = "direct"
	PathHAProxyHTTP = "haproxy-http"
	PathHAProxyTCP  = "haproxy-tcp"
)

// Paths lists every path, direct first (the baseline of the ratios).
var Paths = []string{PathDirect, PathHAProxyHTTP, PathHAProxyTCP}

// Loopback addresses the harness uses besides localcluster's (nodes on
// 127.0.0.11+, auth on 127.0.1.10+).
var (
	tokenServiceIP = netip.MustParseAddr("127.0.1.20")
	haproxyIP      = netip.MustParseAddr("127.0.1.30")
	// DefaultSourceIPs are the article's HAProxy "source" addresses.
	DefaultSourceIPs = []string{"127.0.1.1", "127.0.1.2", "127.0.1.3"}
)

// EnvConfig describes the servers of one path. Zero fields take the
// defaults noted.
type EnvConfig struct {
	// BinDir holds wsdirect-node and wsdirect-auth. Required.
	BinDir string
	// HAProxyBinary is haproxy; default haproxycfg.FindBinary().
	HAProxyBinary string
	// Nodes is the number of node processes. Default 3.
	Nodes int
	// MaxConns is every node's cap. Default 19,000.
	MaxConns int
	// SourceIPs are HAProxy's "source" addresses in mode http. Default
	// DefaultSourceIPs. Mode tcp uses none, like an NLB.
	SourceIPs []string
	// HAProxyMaxConn is HAProxy's maxconn. Default 9,000: every proxied
	// connection takes two descriptors and the hard limit is 20,000.
	HAProxyMaxConn int
	// Logf receives progress lines. Default: none.
	Logf func(format string, args ...any)
}

func (c *EnvConfig) withDefaults() error {
	if c.BinDir == "" {
		return errors.New("benchcompare: BinDir is required")
	}
	if c.Nodes <= 0 {
		c.Nodes = 3
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 19_000
	}
	if len(c.SourceIPs) == 0 {
		c.SourceIPs = DefaultSourceIPs
	}
	if c.HAProxyMaxConn <= 0 {
		c.HAProxyMaxConn = 9_000
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

// Env is one path's running servers: the cluster and, on the HAProxy paths,
// haproxy and the token service.
type Env struct {
	Path    string
	Cluster *localcluster.Cluster
	HAProxy *HAProxy
	Tokens  *TokenService
	dir     string
}

// StartEnv starts a fresh cluster (fresh processes, so that every path's
// peak RSS is its own) and, for the HAProxy paths, haproxy in front of its
// nodes plus the token service, and checks one connection end to end.
func StartEnv(ctx context.Context, path string, cfg EnvConfig) (*Env, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	var mode string
	switch path {
	case PathDirect:
	case PathHAProxyHTTP:
		mode = haproxycfg.ModeHTTP
	case PathHAProxyTCP:
		mode = haproxycfg.ModeTCP
	default:
		return nil, fmt.Errorf("benchcompare: unknown path %q (want one of %v)", path, Paths)
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
	cl, err := localcluster.Start(ctx, localcluster.Config{
		BinDir:   cfg.BinDir,
		Nodes:    cfg.Nodes,
		MaxConns: cfg.MaxConns,
		LogLevel: "warn",
		Logf:     cfg.Logf,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e.Cluster = cl
	if mode == "" {
		return e, nil
	}

	hcfg := haproxycfg.Config{
		Mode:                mode,
		MaxConn:             cfg.HAProxyMaxConn,
		HealthCheckInterval: time.Second,
		HealthCheckRise:     1,
	}
	if mode == haproxycfg.ModeHTTP {
		hcfg.SourceIPs = cfg.SourceIPs
	}
	var names []string
	for _, p := range cl.Nodes {
		ap, err := netip.ParseAddrPort(p.HTTPAddr)
		if err != nil {
			e.Stop()
			return nil, err
		}
		hcfg.Backends = append(hcfg.Backends, haproxycfg.Backend{Name: p.Name, Address: ap.Addr().String(), Port: int(ap.Port())})
		names = append(names, p.Name)
	}
	if hcfg.Bind, err = freeAddr(haproxyIP); err != nil {
		e.Stop()
		return nil, err
	}
	if e.HAProxy, err = StartHAProxy(ctx, cfg.HAProxyBinary, hcfg, dir); err != nil {
		e.Stop()
		return nil, err
	}
	key, err := token.LoadPrivateKey(filepath.Join(cl.Dir(), "signing.key"))
	if err != nil {
		e.Stop()
		return nil, err
	}
	users, err := authsvc.NewUsersFile(filepath.Join(cl.Dir(), "users"))
	if err != nil {
		e.Stop()
		return nil, err
	}
	tsAddr, err := freeAddr(tokenServiceIP)
	if err != nil {
		e.Stop()
		return nil, err
	}
	e.Tokens, err = StartTokenService(tsAddr, TokenServiceConfig{
		SigningKey:    key,
		Audiences:     names,
		WSURL:         "ws://" + e.HAProxy.Bind + "/ws",
		Authenticator: users,
	})
	if err != nil {
		e.Stop()
		return nil, err
	}
	// One connection end to end: token service, haproxy, a node.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = probe.Poll(pctx, 10*time.Second, 100*time.Millisecond, "a connection through haproxy ("+string(mode)+")", func() error {
		conn, _, err := client.Dial(pctx, e.AuthURL(), e.Credentials())
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		e.Stop()
		return nil, fmt.Errorf("benchcompare: %w\n%s", err, e.HAProxy.Output())
	}
	cfg.Logf("haproxy (mode %s) on %s in front of %d nodes, token service on %s", mode, e.HAProxy.Bind, len(names), e.Tokens.URL())
	return e, nil
}

// AuthURL is where clients of this path ask for a token: wsdirect-auth on
// the direct path, the token service behind HAProxy.
func (e *Env) AuthURL() string {
	if e.Tokens != nil {
		return e.Tokens.URL()
	}
	return e.Cluster.AuthURL()
}

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
	if e.Tokens != nil {
		_ = e.Tokens.Close()
	}
	if e.HAProxy != nil {
		_ = e.HAProxy.Kill()
	}
	if e.Cluster != nil {
		e.Cluster.Stop()
	}
	os.RemoveAll(e.dir)
}
