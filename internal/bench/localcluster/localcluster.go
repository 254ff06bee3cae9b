package localcluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// Binary names looked up in Config.BinDir.
const (
	NodeBinary = "wsdirect-node"
	AuthBinary = "wsdirect-auth"
)

// Config describes a local cluster. Start from DefaultConfig; Start rejects
// invalid fields.
type Config struct {
	// BinDir holds wsdirect-node and wsdirect-auth (`make build` puts them
	// in ./bin). Required.
	BinDir string
	// Nodes is the number of node processes, at least 1.
	Nodes int
	// Auths is the number of auth processes, at least 1.
	Auths int
	// NodeIPBase is the loopback address of node 0; node i takes the i-th
	// next address.
	NodeIPBase netip.Addr
	// AuthIPBase is the loopback address of auth 0.
	AuthIPBase netip.Addr
	// Dir holds keys, the users file and logs. Empty means a new temporary
	// directory, removed by Stop unless KeepDir.
	Dir     string
	KeepDir bool
	// MaxConns is every node's -max-conns; 0 leaves the binary's default.
	MaxConns int
	// Username of the bench user in the users file. Required.
	Username string
	// Password of the bench user; empty means a random one, which
	// Cluster.Password reports.
	Password string
	// BcryptCost of the bench user's hash, within bcrypt's MinCost-MaxCost.
	BcryptCost int
	// LoginRate and LoginBurst are passed to auth as -login-rate and
	// -login-burst. Must be > 0.
	LoginRate  float64
	LoginBurst int
	// LogLevel for every process (debug, info, warn or error). Required.
	LogLevel string
	// TLS serves auth on https:// and the nodes on wss:// (-tls files),
	// with certificates from a test CA made for the run: its root is
	// CAFile() in Dir, trusted by nothing but the run's own clients.
	// false: plain http:// and ws:// on loopback.
	TLS bool
	// NodesPlain keeps the nodes on plain ws:// with TLS on: TLS is
	// terminated in front of them (HAProxy's bind ... ssl), auth still
	// serves https://.
	NodesPlain bool
	// NodeArgs and AuthArgs are appended to every node's / auth's flags.
	NodeArgs []string
	AuthArgs []string
	// NodeEnv is added to every node's environment (KEY=value); empty adds
	// nothing and the nodes inherit this process's environment.
	NodeEnv []string
	// ReadyTimeout bounds Start's wait for readiness. Must be > 0.
	ReadyTimeout time.Duration
	// Logf, when set, receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// DefaultConfig returns a three-node, one-auth cluster on loopback; the
// caller sets BinDir.
func DefaultConfig() Config {
	return Config{
		// Three nodes: the smallest cluster where one can fail and the
		// clients still have a choice of two.
		Nodes: 3,
		Auths: 1,
		// Nodes on 127.0.0.11, .12, ...; auth on 127.0.1.10, away from the
		// 127.0.0.x source addresses benchmarks bind.
		NodeIPBase: netip.MustParseAddr("127.0.0.11"),
		AuthIPBase: netip.MustParseAddr("127.0.1.10"),
		Username:   "bench",
		// bcrypt.MinCost: every connect checks the password, and at the
		// production cost (10) 10,000 connects would cost the auth process
		// minutes of CPU.
		BcryptCost: bcrypt.MinCost,
		// Every local client shares one IP, so the per-IP brute-force
		// limit must not apply to the bench user.
		LoginRate:  1e6,
		LoginBurst: 1_000_000,
		LogLevel:   "info",
		// Generous for a loaded 2-core machine building its first gossip
		// view.
		ReadyTimeout: 30 * time.Second,
	}
}

// validate reports every problem with c.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("localcluster: "+format, args...)) }
	if c.BinDir == "" {
		add("BinDir is required")
	} else {
		for _, b := range []string{NodeBinary, AuthBinary} {
			if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
				add("BinDir: %s not found in %s (run `make build`): %v", b, c.BinDir, err)
			}
		}
	}
	if c.Nodes < 1 {
		add("Nodes must be at least 1, got %d", c.Nodes)
	}
	if c.Auths < 1 {
		add("Auths must be at least 1, got %d", c.Auths)
	}
	if !c.NodeIPBase.IsLoopback() {
		add("NodeIPBase %v must be a loopback address", c.NodeIPBase)
	}
	if !c.AuthIPBase.IsLoopback() {
		add("AuthIPBase %v must be a loopback address", c.AuthIPBase)
	}
	if c.MaxConns < 0 {
		add("MaxConns must not be negative, got %d", c.MaxConns)
	}
	if c.Username == "" {
		add("Username is required")
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		add("BcryptCost %d out of range %d-%d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if !(c.LoginRate > 0) {
		add("LoginRate must be > 0, got %g", c.LoginRate)
	}
	if c.LoginBurst < 1 {
		add("LoginBurst must be > 0, got %d", c.LoginBurst)
	}
	if c.LogLevel == "" {
		add("LogLevel is required")
	}
	if c.ReadyTimeout <= 0 {
		add("ReadyTimeout must be > 0, got %s", c.ReadyTimeout)
	}
	return errors.Join(errs...)
}

// Process is one running (or stopped) cluster process.
type Process struct {
	// Name is the member name (node-1, auth-1, ...); for nodes it is the
	// node id clients see.
	Name string
	// HTTPAddr is host:port of its HTTP server (WebSockets for a node, the
	// auth API for auth).
	HTTPAddr string
	// GossipAddr is host:port of its serf agent.
	GossipAddr string
	// LogPath has its stdout and stderr.
	LogPath string

	binary string
	args   []string
	env    []string // added to the inherited environment
	tls    []string // -tls flags, kept across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// PID of the running process, or 0.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// RSS is the process's resident memory in bytes.
func (p *Process) RSS() (int64, error) {
	pid := p.PID()
	if pid == 0 {
		return 0, errors.New("localcluster: process not running")
	}
	return ProcRSS(pid)
}

// PeakRSS is the process's peak resident memory (VmHWM) in bytes.
func (p *Process) PeakRSS() (int64, error) {
	pid := p.PID()
	if pid == 0 {
		return 0, errors.New("localcluster: process not running")
	}
	return ProcStatusBytes(pid, "VmHWM")
}

// Wait waits until the process exits or ctx ends, and returns its exit
// error.
func (p *Process) Wait(ctx context.Context) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Process) start() error {
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "==> %s %s\n", p.binary, strings.Join(p.args, " "))
	cmd := exec.Command(p.binary, p.args...)
	if len(p.env) > 0 {
		cmd.Env = append(os.Environ(), p.env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group, so Stop can kill whatever the process spawned,
	// and SIGKILL if the test binary dies first, so nothing outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("localcluster: start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.err = cmd, done, nil
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *Process) signal(sig syscall.Signal) error {
	pid := p.PID()
	if pid == 0 || !p.Running() {
		return nil
	}
	// Negative pid: the whole process group.
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg        Config
	dir        string
	ownDir     bool
	adminToken string
	Nodes      []*Process
	Auths      []*Process
	http       *http.Client
	ca         *testca.CA
}

// Start generates keys and starts cfg.Auths auth and cfg.Nodes node
// processes, then waits until every node answers /readyz and auth lists all
// of them. On error everything started is stopped.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Password == "" {
		cfg.Password = randomHex(12)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	c := &Cluster{cfg: cfg, dir: cfg.Dir, http: &http.Client{Timeout: 5 * time.Second}}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "wsdirect-localcluster-")
		if err != nil {
			return nil, err
		}
		c.dir, c.ownDir = d, true
	}
	if err := c.writeFiles(); err != nil {
		c.Stop()
		return nil, err
	}
	if c.ca != nil {
		c.http.Transport = &http.Transport{TLSClientConfig: c.ClientTLS()}
	}
	if err := c.startAll(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) path(name string) string { return filepath.Join(c.dir, name) }

func (c *Cluster) writeFiles() error {
	if err := os.MkdirAll(c.path("logs"), 0o755); err != nil {
		return err
	}
	_, priv, err := token.GenerateKey()
	if err != nil {
		return err
	}
	if err := token.WriteKeyPair(c.path("signing.key"), c.path("signing.pub"), priv); err != nil {
		return fmt.Errorf("localcluster: write signing key: %w", err)
	}
	var gossip [32]byte
	if _, err := rand.Read(gossip[:]); err != nil {
		return err
	}
	if err := os.WriteFile(c.path("gossip.key"), []byte(base64.StdEncoding.EncodeToString(gossip[:])+"\n"), 0o600); err != nil {
		return err
	}
	c.adminToken = randomHex(16)
	if err := os.WriteFile(c.path("admin.token"), []byte(c.adminToken+"\n"), 0o600); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(c.cfg.Password), c.cfg.BcryptCost)
	if err != nil {
		return err
	}
	if c.cfg.TLS {
		if c.ca, err = testca.New("wsdirect local test CA (trusted by this run only)"); err != nil {
			return err
		}
		if err := c.ca.WriteRoot(c.CAFile()); err != nil {
			return err
		}
	}
	return os.WriteFile(c.path("users"), []byte(c.cfg.Username+":"+string(hash)+"\n"), 0o600)
}

// CAFile is the PEM root clients must trust with Config.TLS, or "".
func (c *Cluster) CAFile() string {
	if c.ca == nil {
		return ""
	}
	return c.path("ca.pem")
}

// ClientTLS trusts the run's test CA only; nil without Config.TLS.
func (c *Cluster) ClientTLS() *tls.Config {
	if c.ca == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.ca.Cert)
	return &tls.Config{RootCAs: pool}
}

// Issue issues a certificate for hosts from the run's test CA (a balancer
// in front of the nodes, say), which the run's clients trust; an error
// without Config.TLS.
func (c *Cluster) Issue(hosts ...string) (*testca.Leaf, error) {
	if c.ca == nil {
		return nil, errors.New("localcluster: no test CA without Config.TLS")
	}
	return c.ca.Issue(hosts, time.Time{}, time.Time{})
}

// nodeTLSArgs is tlsArgs for a node: nothing with Config.NodesPlain.
func (c *Cluster) nodeTLSArgs(p *Process) ([]string, error) {
	if c.cfg.NodesPlain {
		return nil, nil
	}
	return c.tlsArgs(p)
}

// tlsArgs issues p a certificate for its address and returns the flags
// that serve it, or nothing without Config.TLS.
func (c *Cluster) tlsArgs(p *Process) ([]string, error) {
	if c.ca == nil {
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(p.HTTPAddr)
	leaf, err := c.ca.Issue([]string{host}, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := leaf.WriteFiles(c.dir, p.Name+"-tls")
	if err != nil {
		return nil, err
	}
	return []string{"-tls", "files", "-tls-cert", certFile, "-tls-key", keyFile}, nil
}

// scheme is "https" with Config.TLS, else "http".
func (c *Cluster) scheme() string {
	if c.ca != nil {
		return "https"
	}
	return "http"
}

func (c *Cluster) startAll(ctx context.Context) error {
	ip := c.cfg.AuthIPBase
	for i := 0; i < c.cfg.Auths; i++ {
		p, err := c.newProcess(fmt.Sprintf("auth-%d", i+1), AuthBinary, ip)
		if err != nil {
			return err
		}
		c.Auths = append(c.Auths, p)
		ip = ip.Next()
	}
	ip = c.cfg.NodeIPBase
	for i := 0; i < c.cfg.Nodes; i++ {
		p, err := c.newProcess(fmt.Sprintf("node-%d", i+1), NodeBinary, ip)
		if err != nil {
			return err
		}
		p.env = c.cfg.NodeEnv
		c.Nodes = append(c.Nodes, p)
		ip = ip.Next()
	}
	// Auth 1 first: everyone else joins its gossip address.
	seed := c.Auths[0].GossipAddr
	for i, p := range c.Auths {
		var join []string
		if i > 0 {
			join = []string{seed}
		}
		var err error
		if p.tls, err = c.tlsArgs(p); err != nil {
			return err
		}
		p.args = c.authArgs(p, join)
		if err := p.start(); err != nil {
			return err
		}
		// Nodes join auth 1's gossip: let it bind first, or their first
		// join fails and they retry a second later.
		if i == 0 {
			hctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
			err := c.waitHTTP(hctx, p, "/healthz")
			cancel()
			if err != nil {
				return err
			}
		}
	}
	for _, p := range c.Nodes {
		var err error
		if p.tls, err = c.nodeTLSArgs(p); err != nil {
			return err
		}
		p.args = c.nodeArgs(p, []string{seed})
		if err := p.start(); err != nil {
			return err
		}
	}
	c.cfg.Logf("started %d auth and %d node processes; logs in %s", len(c.Auths), len(c.Nodes), c.path("logs"))
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	return c.WaitReady(ctx)
}

func (c *Cluster) newProcess(name, binary string, ip netip.Addr) (*Process, error) {
	// Another process could take a port before ours binds it; on loopback
	// with fresh addresses that race is rare, and Start fails loudly if it
	// happens.
	httpPort, err := probe.FreePort(ip)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	gossipPort, err := probe.FreePort(ip)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	return &Process{
		Name:       name,
		HTTPAddr:   net.JoinHostPort(ip.String(), strconv.Itoa(httpPort)),
		GossipAddr: net.JoinHostPort(ip.String(), strconv.Itoa(gossipPort)),
		LogPath:    c.path(filepath.Join("logs", name+".log")),
		binary:     filepath.Join(c.cfg.BinDir, binary),
	}, nil
}

func (c *Cluster) authArgs(p *Process, join []string) []string {
	args := []string{
		"-name", p.Name,
		"-bind", p.HTTPAddr,
		"-gossip-bind", p.GossipAddr,
		"-gossip-key-file", c.path("gossip.key"),
		"-signing-key", c.path("signing.key"),
		"-users", c.path("users"),
		"-admin-token-file", c.path("admin.token"),
		"-login-rate", strconv.FormatFloat(c.cfg.LoginRate, 'f', -1, 64),
		"-login-burst", strconv.Itoa(c.cfg.LoginBurst),
		// Every bench client logs in as the one bench user.
		"-max-user-tokens", "0",
		"-log-level", c.cfg.LogLevel,
	}
	if len(join) > 0 {
		args = append(args, "-join", strings.Join(join, ","))
	}
	args = append(args, p.tls...)
	return append(args, c.cfg.AuthArgs...)
}

func (c *Cluster) nodeArgs(p *Process, join []string) []string {
	host, port, _ := net.SplitHostPort(p.HTTPAddr)
	args := []string{
		"-name", p.Name,
		"-bind", p.HTTPAddr,
		"-advertise", host,
		"-advertise-port", port,
		"-gossip-bind", p.GossipAddr,
		"-gossip-key-file", c.path("gossip.key"),
		"-auth-keys", c.path("signing.pub"),
		"-admin-token-file", c.path("admin.token"),
		// Every bench client logs in as the one bench user.
		"-max-conns-per-user", "0",
		// One host, one clock: no skew to allow for, so tokens minted right
		// after a node starts are accepted.
		"-token-leeway", "0s",
		"-log-level", c.cfg.LogLevel,
	}
	if c.cfg.MaxConns > 0 {
		args = append(args, "-max-conns", strconv.Itoa(c.cfg.MaxConns))
	}
	if len(join) > 0 {
		args = append(args, "-join", strings.Join(join, ","))
	}
	args = append(args, p.tls...)
	return append(args, c.cfg.NodeArgs...)
}

// AuthURL is the base URL of auth 1, e.g. "http://127.0.1.10:41234"
// (https with Config.TLS).
func (c *Cluster) AuthURL() string { return c.scheme() + "://" + c.Auths[0].HTTPAddr }

// AuthURLs lists every auth instance's base URL.
func (c *Cluster) AuthURLs() []string {
	out := make([]string, len(c.Auths))
	for i, p := range c.Auths {
		out[i] = c.scheme() + "://" + p.HTTPAddr
	}
	return out
}

// Username and Password of the bench user.
func (c *Cluster) Username() string { return c.cfg.Username }
func (c *Cluster) Password() string { return c.cfg.Password }

// AdminToken guards GET /v1/nodes and the node admin endpoints.
func (c *Cluster) AdminToken() string { return c.adminToken }

// Dir holds keys and logs.
func (c *Cluster) Dir() string { return c.dir }

// NodeIndex returns the index of the node named name, or -1.
func (c *Cluster) NodeIndex(name string) int {
	for i, p := range c.Nodes {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// NodeStatuses asks auth instance a for its view of the nodes.
func (c *Cluster) NodeStatuses(ctx context.Context, a int) ([]wire.NodeStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme()+"://"+c.Auths[a].HTTPAddr+wire.NodesPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.adminToken)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", wire.NodesPath, res.Status, strings.TrimSpace(string(data)))
	}
	return decodeNodes(data)
}

// decodeNodes accepts a bare list or an object with a "nodes" list.
func decodeNodes(data []byte) ([]wire.NodeStatus, error) {
	var list []wire.NodeStatus
	if err := json.Unmarshal(data, &list); err == nil {
		return list, nil
	}
	var obj struct {
		Nodes []wire.NodeStatus `json:"nodes"`
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", wire.NodesPath, err)
	}
	return obj.Nodes, nil
}

// waitPoll is how often the cluster's waits look; waitLimit bounds a wait
// whose context has no deadline of its own.
const (
	waitPoll  = 50 * time.Millisecond
	waitLimit = 5 * time.Minute
)

// WaitNodes polls auth instance a until cond holds for its node list.
func (c *Cluster) WaitNodes(ctx context.Context, a int, cond func([]wire.NodeStatus) bool) error {
	return probe.Poll(ctx, waitLimit, waitPoll, fmt.Sprintf("auth %d's node list", a), func() error {
		nodes, err := c.NodeStatuses(ctx, a)
		if err != nil {
			return err
		}
		return probe.Check(cond(nodes), "nodes %+v", nodes)
	})
}

// WaitReady waits until every running node answers /readyz with 200 and
// every running auth instance lists all of them alive and not draining.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for _, p := range append(append([]*Process(nil), c.Auths...), c.Nodes...) {
		if !p.Running() {
			continue
		}
		path := "/readyz"
		if strings.HasPrefix(p.Name, "auth") {
			path = "/healthz"
		}
		if err := c.waitHTTP(ctx, p, path); err != nil {
			return err
		}
	}
	var want []string
	for _, p := range c.Nodes {
		if p.Running() {
			want = append(want, p.Name)
		}
	}
	for a, p := range c.Auths {
		if !p.Running() {
			continue
		}
		err := c.WaitNodes(ctx, a, func(nodes []wire.NodeStatus) bool {
			alive := map[string]bool{}
			for _, n := range nodes {
				if n.Alive && !n.Draining {
					alive[n.ID] = true
				}
			}
			for _, w := range want {
				if !alive[w] {
					return false
				}
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("localcluster: %s does not list all %d nodes: %w", p.Name, len(want), err)
		}
	}
	return nil
}

func (c *Cluster) waitHTTP(ctx context.Context, p *Process, path string) error {
	scheme := "http"
	if len(p.tls) > 0 {
		scheme = "https"
	}
	url := scheme + "://" + p.HTTPAddr + path
	err := probe.Poll(ctx, waitLimit, waitPoll, p.Name+" to answer 200 at "+url, func() error {
		if !p.Running() {
			return probe.Stop(fmt.Errorf("%s exited: %v", p.Name, p.Wait(ctx)))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		res, err := c.http.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return probe.Equal("status", res.StatusCode, http.StatusOK)
	})
	if err != nil {
		return fmt.Errorf("localcluster: %w; log %s:\n%s", err, p.LogPath, tail(p.LogPath, 20))
	}
	return nil
}

// AddNode starts one more node process, named and addressed after the last
// one (node-4 on 127.0.0.14 after three), joining the gossip through the
// running members, and waits until it answers /readyz and every running
// auth instance lists it: a scale-out.
func (c *Cluster) AddNode(ctx context.Context) (*Process, error) {
	ip := c.cfg.NodeIPBase
	for range c.Nodes {
		ip = ip.Next()
	}
	p, err := c.newProcess(fmt.Sprintf("node-%d", len(c.Nodes)+1), NodeBinary, ip)
	if err != nil {
		return nil, err
	}
	p.env = c.cfg.NodeEnv
	if p.tls, err = c.nodeTLSArgs(p); err != nil {
		return nil, err
	}
	var join []string
	for _, o := range append(append([]*Process(nil), c.Auths...), c.Nodes...) {
		if o.Running() {
			join = append(join, o.GossipAddr)
		}
	}
	p.args = c.nodeArgs(p, join)
	if err := p.start(); err != nil {
		return nil, err
	}
	c.Nodes = append(c.Nodes, p)
	c.cfg.Logf("started %s on %s", p.Name, p.HTTPAddr)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	return p, c.WaitReady(ctx)
}

// Kill sends SIGKILL to node i: no drain, no graceful leave, its clients see
// their connections break.
func (c *Cluster) Kill(i int) error {
	if err := c.Nodes[i].signal(syscall.SIGKILL); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[i].Wait(ctx); errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("localcluster: %s survived SIGKILL", c.Nodes[i].Name)
	}
	return nil
}

// Drain sends SIGTERM to node i, which drains its clients and exits; use
// Nodes[i].Wait to wait for the exit.
func (c *Cluster) Drain(i int) error { return c.Nodes[i].signal(syscall.SIGTERM) }

// RestartAuth stops auth instance a gracefully, starts it again on the same
// addresses, joining a running node's gossip, and waits until it lists all
// running nodes.
func (c *Cluster) RestartAuth(ctx context.Context, a int) error {
	p := c.Auths[a]
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := p.Wait(stopCtx)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		_ = p.signal(syscall.SIGKILL)
		_ = p.Wait(ctx)
	}
	var join []string
	for _, n := range c.Nodes {
		if n.Running() {
			join = append(join, n.GossipAddr)
			break
		}
	}
	for j, o := range c.Auths {
		if j != a && o.Running() {
			join = append(join, o.GossipAddr)
		}
	}
	p.args = c.authArgs(p, join)
	if err := p.start(); err != nil {
		return err
	}
	ctx, cancel = context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	return c.WaitReady(ctx)
}

// Stop terminates every process (SIGTERM, then SIGKILL after 5s) and
// removes the directory if Start created it and KeepDir is false. It is
// safe to call more than once.
func (c *Cluster) Stop() {
	all := append(append([]*Process(nil), c.Nodes...), c.Auths...)
	for _, p := range all {
		_ = p.signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range all {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		if err := p.Wait(ctx); errors.Is(err, context.DeadlineExceeded) {
			_ = p.signal(syscall.SIGKILL)
			kctx, kcancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = p.Wait(kctx)
			kcancel()
		}
		cancel()
	}
	if c.ownDir && !c.cfg.KeepDir {
		os.RemoveAll(c.dir)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	// Since Go 1.24 crypto/rand.Read never returns an error: if the
	// system's generator fails, the runtime crashes the program instead.
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var buf []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		buf = append(buf, sc.Text())
		if len(buf) > lines {
			buf = buf[1:]
		}
	}
	return strings.Join(buf, "\n")
}

// ProcStatFields splits the text of /proc/<pid>/stat after the command
// name, so the first field returned is field 3 (state). The command name
// (field 2) is in parentheses and may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func ProcStatFields(stat string) ([]string, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, errors.New("stat: no command name")
	}
	return strings.Fields(stat[i+1:]), nil
}

// ProcRSS is the resident set size (VmRSS) of process pid in bytes.
func ProcRSS(pid int) (int64, error) { return ProcStatusBytes(pid, "VmRSS") }

// ProcStatusBytes reads a "kB" field of /proc/<pid>/status (VmRSS, VmHWM,
// ...) in bytes. pid 0 means this process.
func ProcStatusBytes(pid int, field string) (int64, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) != 2 || fs[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected %s line %q", path, field, sc.Text())
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s line", path, field)
}
