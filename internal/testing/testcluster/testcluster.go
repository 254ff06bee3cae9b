package testcluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/tlscert"
	"github.com/wsdirect/terraform-provider-wsdirect/node"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// The test user every cluster's users file holds.
const (
	User     = "tester"
	Password = "correct horse battery staple"
)

// AdminToken guards the nodes' and auth instances' admin endpoints.
const AdminToken = "testcluster-admin-token"

// Options shape a test cluster. Start from DefaultOptions; Start fails the
// test on invalid fields.
type Options struct {
	// Nodes is the number of WebSocket nodes, 1-100.
	Nodes int
	// Auths is the number of auth instances, 1-9.
	Auths int
	// Cap is every node's -max-conns, at least 1.
	Cap int
	// Upstream is the app every node relays to; "" means the built-in echo.
	Upstream string
	// UpstreamFor, when set, overrides Upstream per node (index from 0).
	UpstreamFor func(i int, name string) string
	// Credentials replaces the bcrypt users-file backend when set.
	Credentials authsvc.Authenticator
	// TokenTTL is the connection token lifetime. Must be > 0.
	TokenTTL time.Duration
	// ClusterConfig, when set, adjusts every member's gossip configuration
	// after the harness filled it in (e.g. to slow gossip down). The harness
	// gives members SteadyFailureDetection; a test that kills a member and
	// waits for the others to notice passes QuickFailureDetection here.
	ClusterConfig func(c *cluster.Config)
	// NodeConfig and AuthConfig, when set, adjust each node's and auth
	// instance's configuration after the harness filled it in.
	NodeConfig func(i int, c *node.Config)
	AuthConfig func(i int, c *authsvc.Config)
	// ReadyTimeout bounds the wait for every auth instance to see every
	// node. Must be > 0.
	ReadyTimeout time.Duration
	// TLS serves auth on https:// and the nodes on wss://, through the
	// same certificate machinery as the binaries (internal/tlscert), with
	// certificates from the cluster's own test CA (CA) in files mode.
	TLS bool
	// ACME, when set, makes every node obtain its certificate from an ACME
	// CA instead (auth keeps the test CA's); TLS must be set with it. Nil:
	// the test CA's certificates (with TLS).
	ACME *ACMEOptions
}

// ACMEOptions point the nodes at an ACME CA (pebble in tests). Each node
// orders a certificate for its own 127.0.0.x address and answers http-01
// on it. Start from DefaultACMEOptions.
type ACMEOptions struct {
	// Directory is the CA's directory URL and CAFile the root of its
	// HTTPS. Required.
	Directory, CAFile string
	// HTTPPort is the port the CA validates http-01 on, 1-65535.
	HTTPPort int
	// Roots is what clients must trust for the issued certificates. It may
	// be set after Start (pebble makes its roots when it starts);
	// ClientTLS reads it when called.
	Roots []byte
	// RetryMin and RetryMax bound the nodes' retry backoff: RetryMin > 0,
	// RetryMax >= RetryMin.
	RetryMin, RetryMax time.Duration
}

// DefaultACMEOptions returns the retry bounds; the caller sets the CA.
func DefaultACMEOptions() *ACMEOptions {
	return &ACMEOptions{
		// A test waits for the CA to come back: retry within a second, not
		// tlscert's production half-minute.
		RetryMin: 200 * time.Millisecond,
		RetryMax: time.Second,
	}
}

// DefaultOptions returns three nodes and one auth instance.
func DefaultOptions() Options {
	return Options{
		// Three nodes: one can fail and the clients still have a choice.
		Nodes: 3,
		Auths: 1,
		// node.DefaultConfig's cap.
		Cap:      node.DefaultConfig().MaxConns,
		TokenTTL: token.DefaultTTL,
		// Generous for -race on a loaded 2-core machine.
		ReadyTimeout: 20 * time.Second,
	}
}

// validate reports the first problem with o.
func (o *Options) validate() error {
	switch {
	case o.Nodes < 1 || o.Nodes > 100:
		return fmt.Errorf("testcluster: Nodes must be 1-100, got %d", o.Nodes)
	case o.Auths < 1 || o.Auths > 9:
		return fmt.Errorf("testcluster: Auths must be 1-9, got %d", o.Auths)
	case o.Cap < 1:
		return fmt.Errorf("testcluster: Cap must be at least 1, got %d", o.Cap)
	case o.TokenTTL <= 0:
		return fmt.Errorf("testcluster: TokenTTL must be > 0, got %s", o.TokenTTL)
	case o.ReadyTimeout <= 0:
		return fmt.Errorf("testcluster: ReadyTimeout must be > 0, got %s", o.ReadyTimeout)
	}
	if a := o.ACME; a != nil {
		switch {
		case !o.TLS:
			return errors.New("testcluster: ACME needs TLS (auth serves the test CA's certificate)")
		case a.Directory == "" || a.CAFile == "":
			return errors.New("testcluster: ACME.Directory and ACME.CAFile are required")
		case a.HTTPPort < 1 || a.HTTPPort > 65535:
			return fmt.Errorf("testcluster: ACME.HTTPPort must be 1-65535, got %d", a.HTTPPort)
		case a.RetryMin <= 0 || a.RetryMax < a.RetryMin:
			return fmt.Errorf("testcluster: ACME retry %s..%s: want 0 < RetryMin <= RetryMax", a.RetryMin, a.RetryMax)
		}
	}
	return nil
}

// Cluster is a running in-process cluster. It is torn down by tb.Cleanup.
type Cluster struct {
	tb   testing.TB
	opts Options

	// SigningKey is the auth instances' Ed25519 key; Signer mints with it,
	// Keys is the set every node trusts.
	SigningKey ed25519.PrivateKey
	Signer     *token.Signer
	Keys       token.KeySet
	// GossipKey is the shared serf encryption key.
	GossipKey []byte
	// UsersFile is the path of the bcrypt users file holding User.
	UsersFile string
	// CA issues the TLS certificates with Options.TLS.
	CA *testca.CA

	dir string

	mu    sync.Mutex
	nodes []*Node
	auths []*Auth
}

// Node is one WebSocket node of the cluster.
type Node struct {
	Index int
	Name  string
	// Addr is the host:port of the node's WebSocket/HTTP server.
	Addr string
	// Server is the node itself; Cluster is its gossip membership;
	// Verifier checks its connection tokens.
	Server   *node.Node
	Cluster  *cluster.Cluster
	Verifier *token.Verifier
	// Registry holds the node's metrics.
	Registry *prometheus.Registry

	// Certs serves the node's certificate (mode off without TLS).
	Certs *tlscert.Manager

	srv    *http.Server
	ln     *trackingListener
	mu     sync.Mutex
	killed bool
	closed bool
}

// Conns is the number of WebSockets the node holds right now.
func (n *Node) Conns() int { return n.Server.Conns() }

// URL is the WebSocket endpoint of the node.
func (n *Node) URL() string { return n.Certs.Scheme() + "://" + n.Addr + "/ws" }

// Auth is one auth instance of the cluster.
type Auth struct {
	Index int
	Name  string
	// Addr is the host:port of its HTTP server; it survives RestartAuth.
	Addr    string
	Server  *authsvc.Server
	Cluster *cluster.Cluster

	gossipPort int
	srv        *http.Server
	certs      *tlscert.Manager
	done       chan struct{}
}

// URL is the base URL clients pass to client.Dial.
func (a *Auth) URL() string {
	if a.certs != nil && a.certs.Mode().ServesTLS() {
		return "https://" + a.Addr
	}
	return "http://" + a.Addr
}

// Start brings up a cluster and waits until every auth instance sees every
// node. It fails tb on any error.
func Start(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if err := opts.validate(); err != nil {
		tb.Fatal(err)
	}

	c := &Cluster{tb: tb, opts: opts, dir: tb.TempDir()}
	tb.Cleanup(c.Close)
	if opts.TLS {
		ca, err := testca.New("testcluster CA")
		if err != nil {
			tb.Fatalf("testcluster: CA: %v", err)
		}
		c.CA = ca
	}

	_, priv, err := token.GenerateKey()
	if err != nil {
		tb.Fatalf("testcluster: signing key: %v", err)
	}
	c.SigningKey = priv
	c.Signer = token.NewSigner(priv).WithTTL(opts.TokenTTL)
	c.Keys = token.KeySet{}
	c.Keys.Add(c.Signer.PublicKey())
	c.GossipKey = make([]byte, 32)
	if _, err := rand.Read(c.GossipKey); err != nil {
		tb.Fatalf("testcluster: gossip key: %v", err)
	}
	if opts.Credentials == nil {
		// The lowest bcrypt cost keeps logins cheap; the backend's cost is a
		// deployment choice, not what these tests measure.
		hash, err := bcrypt.GenerateFromPassword([]byte(Password), bcrypt.MinCost)
		if err != nil {
			tb.Fatalf("testcluster: bcrypt: %v", err)
		}
		c.UsersFile = filepath.Join(tb.TempDir(), "users")
		if err := os.WriteFile(c.UsersFile, []byte(User+":"+string(hash)+"\n"), 0o600); err != nil {
			tb.Fatalf("testcluster: users file: %v", err)
		}
	}

	for i := 0; i < opts.Nodes; i++ {
		n, err := c.startNode(i)
		if err != nil {
			tb.Fatalf("testcluster: node %d: %v", i, err)
		}
		c.mu.Lock()
		c.nodes = append(c.nodes, n)
		c.mu.Unlock()
	}
	for i := 0; i < opts.Auths; i++ {
		a, err := c.startAuth(i, "", 0)
		if err != nil {
			tb.Fatalf("testcluster: auth %d: %v", i, err)
		}
		c.mu.Lock()
		c.auths = append(c.auths, a)
		c.mu.Unlock()
	}
	c.WaitAuthViews(opts.ReadyTimeout, "every auth instance sees every node", func(view []cluster.Member) bool {
		return len(view) == opts.Nodes
	})
	return c
}

// Logger is what every member logs to: nothing, unless WSDIRECT_TEST_LOG is
// set (then text to stderr at that level: debug, info, warn, error).
func Logger() *slog.Logger {
	lvl := os.Getenv("WSDIRECT_TEST_LOG")
	if lvl == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(lvl)); err != nil {
		l = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// SteadyFailureDetection is the harness's failure detection: a member is
// declared failed only after about 8 s (at most 32 s) of silence. Every
// member of a test cluster lives in the test process, so when that process
// is starved (-race, two cores shared with other test packages) all of
// them stall together and miss each other's probes; with
// cluster.LocalConfig's 1.2 s suspicion they were seen declaring every node
// failed, and auth answered 503 to clients of a test that kills nothing.
// Count propagation (gossip, not probes) is not slowed.
func SteadyFailureDetection(c *cluster.Config) {
	c.ProbeInterval = time.Second
	c.ProbeTimeout = 800 * time.Millisecond
	c.SuspicionMult = 8 // 8 s suspicion for n <= 10
	c.SuspicionMaxTimeoutMult = 4
}

// QuickFailureDetection restores cluster.LocalConfig's failure detection
// (a killed member is out of every view within a few seconds), for tests
// and benchmarks that kill members and wait for the others to notice. They
// must wait generously: on a starved machine a live member can be declared
// failed too, and refutes it moments later.
func QuickFailureDetection(c *cluster.Config) {
	l := cluster.LocalConfig()
	c.ProbeInterval, c.ProbeTimeout = l.ProbeInterval, l.ProbeTimeout
	c.SuspicionMult, c.SuspicionMaxTimeoutMult = l.SuspicionMult, l.SuspicionMaxTimeoutMult
}

func (c *Cluster) clusterConfig(name string, role cluster.Role, ip string, gossipPort int) *cluster.Config {
	conf := cluster.LocalConfig()
	SteadyFailureDetection(conf)
	conf.Name = name
	conf.Role = role
	conf.BindAddr = ip
	conf.BindPort = gossipPort
	conf.AdvertiseAddr = ip
	conf.SecretKey = c.GossipKey
	conf.Logger = Logger().With("member", name)
	return conf
}

// gossipSeeds are the addresses a new member joins through: every live
// member's gossip address.
func (c *Cluster) gossipSeeds() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var seeds []string
	for _, n := range c.nodes {
		n.mu.Lock()
		if !n.killed && !n.closed {
			seeds = append(seeds, n.Cluster.GossipAddr())
		}
		n.mu.Unlock()
	}
	for _, a := range c.auths {
		if a.Cluster != nil {
			seeds = append(seeds, a.Cluster.GossipAddr())
		}
	}
	return seeds
}

func (c *Cluster) startNode(i int) (*Node, error) {
	ip := "127.0.0." + strconv.Itoa(11+i)
	name := "node-" + strconv.Itoa(i+1)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	tl := newTrackingListener(ln.(*net.TCPListener))
	port := ln.Addr().(*net.TCPAddr).Port

	nreg := prometheus.NewRegistry()
	certs, err := c.certs(name, ip, ln.Addr().String(), c.opts.ACME, nreg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	conf := c.clusterConfig(name, cluster.RoleNode, ip, 0)
	conf.PublicAddr = ip
	conf.WSPort = port
	conf.WSScheme = certs.Scheme()
	conf.NotReady = certs.Ready() != nil
	conf.Cap = c.opts.Cap
	cl, err := c.joinMember(conf)
	if err != nil {
		certs.Close()
		ln.Close()
		return nil, err
	}

	nconf := node.DefaultConfig()
	nconf.Name = name
	nconf.MaxConns = c.opts.Cap
	nconf.Upstream = c.opts.Upstream
	if c.opts.UpstreamFor != nil {
		nconf.Upstream = c.opts.UpstreamFor(i, name)
	}
	nconf.AdminToken = AdminToken
	// Every test client logs in as User: a per-user cap would refuse the
	// tests themselves (it has its own tests in package node).
	nconf.MaxConnsPerUser = 0
	nconf.View = cl
	// Off unless a test turns it on (NodeConfig): the other tests count
	// every disconnect and every client's node, and small test clusters
	// are uneven enough to start rounds. Rebalancing has tests of its own.
	nconf.Rebalance.Enabled = false
	nconf.Logger = Logger().With("node", name)
	nconf.Registry = nreg
	if c.opts.NodeConfig != nil {
		c.opts.NodeConfig(i, nconf)
	}
	// One host, one clock: no skew to allow for at the start.
	v := token.NewVerifier(name, c.Keys).RejectIssuedBefore(time.Now())
	srv, err := node.New(nconf, v, cl)
	if err != nil {
		certs.Close()
		cl.Shutdown()
		ln.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	certs.Watch(func(notReady error) {
		if notReady != nil {
			srv.SetNotReady("TLS: " + notReady.Error())
		} else {
			srv.SetNotReady("")
		}
	})
	n := &Node{
		Index: i, Name: name, Addr: ln.Addr().String(),
		Server: srv, Cluster: cl, Verifier: v, Registry: nconf.Registry, Certs: certs,
		ln: tl,
		srv: &http.Server{
			Handler:           srv.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(Logger().Handler(), slog.LevelWarn),
		},
	}
	go n.srv.Serve(certs.Listener(node.Listener(tl)))
	if err := certs.Start(context.Background(), tlscert.HealthOnly(srv.Handler())); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

// certs makes the TLS manager of one member, as the binaries do: mode off
// without Options.TLS, files with a certificate from the cluster's CA for
// ip, or ACME against acme.
func (c *Cluster) certs(name, ip, listenAddr string, acme *ACMEOptions, reg prometheus.Registerer) (*tlscert.Manager, error) {
	tc := tlscert.DefaultConfig()
	tc.Logger = Logger().With("member", name)
	tc.Registry = reg
	tc.ListenAddr = listenAddr
	tc.TicketSecret = c.GossipKey
	tc.CheckInterval = 200 * time.Millisecond
	switch {
	case !c.opts.TLS:
	case acme != nil:
		tc.Mode = tlscert.ModeACME
		tc.Names = []string{ip}
		tc.ACMEDirectory, tc.ACMECARoots = acme.Directory, acme.CAFile
		tc.ACMEStorage = filepath.Join(c.dir, name+"-acme")
		tc.ACMEHTTPAddr = net.JoinHostPort(ip, strconv.Itoa(acme.HTTPPort))
		tc.ACMETLSALPN = false // the TLS port is the kernel's pick, not the CA's
		tc.RetryMin, tc.RetryMax = acme.RetryMin, acme.RetryMax
	default:
		leaf, err := c.CA.Issue([]string{ip}, time.Time{}, time.Time{})
		if err != nil {
			return nil, err
		}
		tc.Mode = tlscert.ModeFiles
		if tc.CertFile, tc.KeyFile, err = leaf.WriteFiles(c.dir, name); err != nil {
			return nil, err
		}
	}
	return tlscert.New(tc)
}

// ClientTLS is what a client needs to trust the cluster: the test CA, and
// the ACME CA's roots when the nodes use one. Nil without TLS.
func (c *Cluster) ClientTLS() *tls.Config {
	if c.CA == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.CA.Cert)
	if c.opts.ACME != nil {
		pool.AppendCertsFromPEM(c.opts.ACME.Roots)
	}
	return &tls.Config{RootCAs: pool}
}

// joinMember applies the ClusterConfig hook to conf, creates the member and
// joins it to the members already up.
func (c *Cluster) joinMember(conf *cluster.Config) (*cluster.Cluster, error) {
	if c.opts.ClusterConfig != nil {
		c.opts.ClusterConfig(conf)
	}
	cl, err := cluster.Create(conf)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if seeds := c.gossipSeeds(); len(seeds) > 0 {
		if _, err := cl.Join(seeds); err != nil {
			cl.Shutdown()
			return nil, fmt.Errorf("join %v: %w", seeds, err)
		}
	}
	return cl, nil
}

// startAuth starts auth instance i. addr and gossipPort are reused by
// RestartAuth so the restarted instance has the same identity.
func (c *Cluster) startAuth(i int, addr string, gossipPort int) (*Auth, error) {
	ip := "127.0.0." + strconv.Itoa(2+i)
	name := "auth-" + strconv.Itoa(i+1)
	if addr == "" {
		addr = net.JoinHostPort(ip, "0")
	}
	ln, err := listenRetry(addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	areg := prometheus.NewRegistry()
	certs, err := c.certs(name, ip, ln.Addr().String(), nil, areg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	conf := c.clusterConfig(name, cluster.RoleAuth, ip, gossipPort)
	cl, err := c.joinMember(conf)
	if err != nil {
		certs.Close()
		ln.Close()
		return nil, err
	}

	var creds authsvc.Authenticator = c.opts.Credentials
	if creds == nil {
		uf, err := authsvc.NewUsersFile(c.UsersFile)
		if err != nil {
			cl.Shutdown()
			ln.Close()
			return nil, fmt.Errorf("users file: %w", err)
		}
		creds = uf
	}
	aconf := authsvc.DefaultConfig()
	aconf.Signer = c.Signer
	aconf.Credentials = creds
	aconf.View = cl
	aconf.AdminToken = AdminToken
	// Every test client comes from loopback: per-IP login limiting would
	// throttle the whole test, and it has its own unit tests.
	aconf.LoginRate = rate.Inf
	aconf.LoginBurst = 1 << 20
	// Every test client logs in as User; the per-user token limit has its
	// own tests in package authsvc.
	aconf.MaxUserTokens = 0
	aconf.Logger = Logger().With("auth", name)
	aconf.Registry = areg
	if c.opts.AuthConfig != nil {
		c.opts.AuthConfig(i, aconf)
	}
	s, err := authsvc.New(aconf)
	if err != nil {
		certs.Close()
		cl.Shutdown()
		ln.Close()
		return nil, fmt.Errorf("authsvc: %w", err)
	}
	_, gp, _ := net.SplitHostPort(cl.GossipAddr())
	gport, _ := strconv.Atoi(gp)
	a := &Auth{
		Index: i, Name: name, Addr: ln.Addr().String(),
		Server: s, Cluster: cl, gossipPort: gport, certs: certs,
		srv: &http.Server{
			Handler:           s.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(Logger().Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(a.done)
		a.srv.Serve(certs.Listener(ln))
	}()
	return a, nil
}

// listenRetry binds addr, retrying briefly: a restarted server may race the
// kernel releasing its old port.
func listenRetry(addr string, timeout time.Duration) (net.Listener, error) {
	var ln net.Listener
	err := probe.Poll(context.Background(), timeout, 50*time.Millisecond, "a listener on "+addr, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// AuthURL is the base URL of auth instance i.
func (c *Cluster) AuthURL(i int) string { return c.Auth(i).URL() }

// Auth returns auth instance i (as of the last RestartAuth).
func (c *Cluster) Auth(i int) *Auth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auths[i]
}

// Node returns node i.
func (c *Cluster) Node(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Nodes returns every node, killed ones included.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// NodeByName returns the node called name, or nil.
func (c *Cluster) NodeByName(name string) *Node {
	for _, n := range c.Nodes() {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// ConnsByNode maps each node's name to its live WebSocket count.
func (c *Cluster) ConnsByNode() map[string]int {
	out := map[string]int{}
	for _, n := range c.Nodes() {
		out[n.Name] = n.Conns()
	}
	return out
}

// AddNode starts one more node (the next index, on the next 127.0.0.x),
// joins it to the cluster and waits until every auth instance lists it:
// a scale-out.
func (c *Cluster) AddNode() *Node {
	c.tb.Helper()
	c.mu.Lock()
	i := len(c.nodes)
	c.mu.Unlock()
	n, err := c.startNode(i)
	if err != nil {
		c.tb.Fatalf("testcluster: add node %d: %v", i, err)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	c.WaitAuthViews(c.opts.ReadyTimeout, n.Name+" in every auth instance's view", func(view []cluster.Member) bool {
		for _, m := range view {
			if m.Name == n.Name {
				return true
			}
		}
		return false
	})
	return n
}

// KillNode crashes node i: its listener and every TCP connection to it are
// closed abruptly (RST, no close frame), and its gossip stops without a
// leave message, so the rest of the cluster must detect the failure.
func (c *Cluster) KillNode(i int) {
	c.tb.Helper()
	n := c.Node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.killed || n.closed {
		return
	}
	n.killed = true
	n.ln.kill()
	if err := n.Cluster.Shutdown(); err != nil {
		c.tb.Errorf("testcluster: kill %s: serf shutdown: %v", n.Name, err)
	}
}

// DrainNode runs node i's drain (mark draining, publish it, close clients
// with wire.CloseDraining in batches) and returns when the node is empty or
// timeout passed.
func (c *Cluster) DrainNode(i int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Node(i).Server.Drain(ctx)
}

// RestartAuth stops auth instance i (HTTP server shut down, gossip left
// gracefully) and starts a fresh one on the same HTTP address and gossip
// port, then waits until it sees every live node again.
func (c *Cluster) RestartAuth(i int) {
	c.tb.Helper()
	old := c.Auth(i)
	c.stopAuth(old)
	c.mu.Lock()
	c.auths[i] = &Auth{Index: i, Name: old.Name, Addr: old.Addr} // not serving meanwhile
	c.mu.Unlock()
	a, err := c.startAuth(i, old.Addr, old.gossipPort)
	if err != nil {
		c.tb.Fatalf("testcluster: restart %s: %v", old.Name, err)
	}
	c.mu.Lock()
	c.auths[i] = a
	c.mu.Unlock()
	live := c.liveNodes()
	probe.Until(c.tb, c.opts.ReadyTimeout, fmt.Sprintf("restarted %s to see all %d live nodes", a.Name, live), func() error {
		return probe.Equal("nodes seen", len(a.Cluster.Nodes()), live)
	})
}

func (c *Cluster) liveNodes() int {
	k := 0
	for _, n := range c.Nodes() {
		n.mu.Lock()
		if !n.killed && !n.closed {
			k++
		}
		n.mu.Unlock()
	}
	return k
}

func (c *Cluster) stopAuth(a *Auth) {
	if a.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close()
	}
	<-a.done
	a.certs.Close()
	if err := a.Cluster.Leave(); err != nil {
		c.tb.Logf("testcluster: %s leave: %v", a.Name, err)
	}
	if err := a.Cluster.Shutdown(); err != nil {
		c.tb.Logf("testcluster: %s shutdown: %v", a.Name, err)
	}
	a.srv = nil
}

// WaitAuthViews waits until cond holds for the node list of every auth
// instance, failing tb after timeout with what and the first view that
// did not satisfy cond.
func (c *Cluster) WaitAuthViews(timeout time.Duration, what string, cond func(view []cluster.Member) bool) {
	c.tb.Helper()
	probe.Until(c.tb, timeout, what, func() error {
		c.mu.Lock()
		auths := append([]*Auth(nil), c.auths...)
		c.mu.Unlock()
		for _, a := range auths {
			if a.Cluster == nil {
				return fmt.Errorf("%s is restarting", a.Name)
			}
			if view := a.Cluster.Nodes(); !cond(view) {
				return fmt.Errorf("%s sees %s", a.Name, FormatView(view))
			}
		}
		return nil
	})
}

// FormatView is a short form of a node list for failure messages:
// name=conns/cap per node, with "draining" or "dead" where it applies.
func FormatView(view []cluster.Member) string {
	if len(view) == 0 {
		return "no nodes"
	}
	var b strings.Builder
	for i, m := range view {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d/%d", m.Name, m.Conns, m.Cap)
		if m.Draining {
			b.WriteString(" draining")
		}
		if !m.Alive {
			b.WriteString(" dead")
		}
	}
	return b.String()
}

// Close tears everything down; tb.Cleanup calls it.
func (c *Cluster) Close() {
	c.mu.Lock()
	auths := append([]*Auth(nil), c.auths...)
	nodes := append([]*Node(nil), c.nodes...)
	c.mu.Unlock()
	for _, a := range auths {
		c.stopAuthQuiet(a)
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			n.close()
		}(n)
	}
	wg.Wait()
}

func (c *Cluster) stopAuthQuiet(a *Auth) {
	if a.srv == nil {
		return
	}
	a.srv.Close()
	<-a.done
	a.certs.Close()
	a.Cluster.Shutdown()
	a.srv = nil
}

func (n *Node) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	n.srv.Close()
	n.Certs.Close()
	n.Server.Close()
	n.ln.kill()
	if !n.killed {
		n.Cluster.Shutdown()
	}
}

// trackingListener remembers every accepted connection so KillNode can
// reset them all, the way a crashed process's sockets go away. net/http
// forgets hijacked (WebSocket) connections, so the server cannot do it.
type trackingListener struct {
	*net.TCPListener
	mu     sync.Mutex
	conns  map[*net.TCPConn]struct{}
	killed bool
}

func newTrackingListener(l *net.TCPListener) *trackingListener {
	return &trackingListener{TCPListener: l, conns: map[*net.TCPConn]struct{}{}}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.AcceptTCP()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.killed {
		c.SetLinger(0)
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	// Forget connections the peer closed long ago, so a benchmark that
	// opens and closes many does not grow the map without bound.
	if len(l.conns) > 4096 && len(l.conns)%4096 == 0 {
		l.prune()
	}
	return c, nil
}

// prune drops connections that are already closed on our side. Closing is
// not observable on a *net.TCPConn, so it probes with a no-op Control on the
// raw socket, which fails only once the conn is closed.
func (l *trackingListener) prune() {
	for c := range l.conns {
		rc, err := c.SyscallConn()
		if err == nil {
			err = rc.Control(func(uintptr) {})
		}
		if err != nil {
			delete(l.conns, c)
		}
	}
}

// kill closes the listener and resets every connection it accepted.
func (l *trackingListener) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.killed {
		return
	}
	l.killed = true
	l.TCPListener.Close()
	for c := range l.conns {
		c.SetLinger(0) // RST, not FIN: the peer sees a crash
		c.Close()
	}
	l.conns = nil
}
