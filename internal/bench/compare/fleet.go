package compare

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/srcbind"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// FleetWorkerCommand is the subcommand under which a bench binary runs one
// fleet worker (RunFleetWorker).
const FleetWorkerCommand = "drill-worker"

// FleetConfig describes a set of managed clients. Start from
// DefaultFleetConfig; StartFleet rejects invalid fields. It travels as JSON
// to worker processes on their stdin, so the password stays off command
// lines.
type FleetConfig struct {
	// AuthURL is the auth service's base URL. Required.
	AuthURL  string `json:"auth_url"`
	Username string `json:"username"`
	Password string `json:"password"`
	// Users, when not empty, replaces Username and Password: client i logs
	// in as Users[i % len(Users)], so that per-user limits (auth's
	// outstanding tokens, each node's connections per user) meet many
	// users, as in production.
	Users []FleetUser `json:"users,omitempty"`
	// RoutesFile, when set, is a JSON object file mapping addresses the
	// clients are sent to (host only) to the addresses they dial instead.
	// On the local cloud it maps public IPs to the private IPs behind
	// them, as EC2's network does, without the local cloud's NAT
	// forwarder, which holds two descriptors per connection in one
	// process. It is read again when a client meets an address it does
	// not know (a node added later).
	RoutesFile string `json:"routes_file,omitempty"`
	// RootsPEM, when set, holds the only CAs the clients trust for
	// https:// and wss:// (a private CA's root); empty trusts the system's.
	RootsPEM string `json:"roots_pem,omitempty"`
	// Clients is how many managed clients to run, at least 1.
	Clients int `json:"clients"`
	// Rate is the first-connect rate per second. Must be > 0.
	Rate float64 `json:"rate,omitempty"`
	// Concurrency bounds clients whose first connect is in flight; at
	// least 1.
	Concurrency int `json:"concurrency,omitempty"`
	// BackoffBase and BackoffMax are the clients' reconnect backoff (see
	// client.ManagedConfig).
	BackoffBase time.Duration `json:"backoff_base,omitempty"`
	BackoffMax  time.Duration `json:"backoff_max,omitempty"`
	// SourceIPs are loopback addresses the clients bind, round-robin from
	// SourceOffset; empty lets the kernel pick (127.0.0.1). Each address
	// has its own ephemeral ports: tens of thousands of clients, their
	// reconnects and their auth requests exhaust one address's ~28,000,
	// the more so when other runs share the machine's loopback.
	SourceIPs    []netip.Addr `json:"source_ips,omitempty"`
	SourceOffset int          `json:"source_offset,omitempty"`
}

// FleetUser is one user's credentials.
type FleetUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// DefaultFleetConfig returns the defaults; the caller sets AuthURL, the
// credentials and Clients.
func DefaultFleetConfig() FleetConfig {
	return FleetConfig{
		// 2,000/s: 30,000 clients connect in 15 s.
		Rate: 2000,
		// 64 first connects in flight: a slow auth service sees a short
		// queue instead of a pile of requests that time out and return.
		Concurrency: 64,
		// The first window spreads a lost node's clients over half a
		// second instead of sending them to auth all at once.
		BackoffBase: 500 * time.Millisecond,
		BackoffMax:  4 * time.Second,
	}
}

// DefaultFleetSourceIPs are the addresses drill clients bind by default,
// apart from localcluster's (127.0.0.x nodes, 127.0.1.x auth) and the
// benchmarks' 127.0.0.x source addresses.
var DefaultFleetSourceIPs = func() []netip.Addr {
	var out []netip.Addr
	a := netip.MustParseAddr("127.0.3.1")
	for i := 0; i < 8; i++ {
		out = append(out, a)
		a = a.Next()
	}
	return out
}()

// validate reports the first problem with c.
func (c *FleetConfig) validate() error {
	switch {
	case c.AuthURL == "":
		return errors.New("benchcompare: fleet AuthURL is required")
	case c.Clients < 1:
		return fmt.Errorf("benchcompare: fleet Clients must be at least 1, got %d", c.Clients)
	case !(c.Rate > 0):
		return fmt.Errorf("benchcompare: fleet Rate must be > 0, got %g", c.Rate)
	case c.Concurrency < 1:
		return fmt.Errorf("benchcompare: fleet Concurrency must be at least 1, got %d", c.Concurrency)
	case c.BackoffBase <= 0:
		return fmt.Errorf("benchcompare: fleet BackoffBase must be > 0, got %s", c.BackoffBase)
	case c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("benchcompare: fleet BackoffMax (%s) must be at least BackoffBase (%s)", c.BackoffMax, c.BackoffBase)
	case c.SourceOffset < 0:
		return fmt.Errorf("benchcompare: fleet SourceOffset must not be negative, got %d", c.SourceOffset)
	case c.RootsPEM != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(c.RootsPEM)):
		return errors.New("benchcompare: fleet RootsPEM holds no PEM certificate")
	}
	for _, ip := range c.SourceIPs {
		if !ip.IsLoopback() {
			return fmt.Errorf("benchcompare: fleet SourceIPs: %s is not a loopback address", ip)
		}
	}
	return nil
}

// FleetStatus is a snapshot of a fleet (or the sum of several).
type FleetStatus struct {
	Clients int `json:"clients"`
	// Connected clients right now, and how many per node.
	Connected int            `json:"connected"`
	Nodes     map[string]int `json:"nodes"`
	// Connects counts successful connects, first ones and reconnects.
	Connects int64 `json:"connects"`
	// Disconnects counts established connections that ended.
	Disconnects int64 `json:"disconnects"`
	// FailedAttempts counts connect attempts that failed, by kind.
	FailedAttempts map[string]int64 `json:"failed_attempts"`
	// LastConnect is the Unix time in nanoseconds of the latest successful
	// connect.
	LastConnect int64 `json:"last_connect"`
	// GaveUp counts clients whose Run stopped with an error (bad
	// credentials, a close code that says not to come back).
	GaveUp int `json:"gave_up"`
	// Rebalanced counts closes with wire.CloseRebalance (clients a node
	// moved); RebalancedTwice counts clients that saw more than one.
	Rebalanced      int64 `json:"rebalanced"`
	RebalancedTwice int   `json:"rebalanced_twice"`
	// CloseCodes counts established connections that ended, by close code
	// (1006: the connection broke without a close frame).
	CloseCodes map[int]int64 `json:"close_codes,omitempty"`
	// Gaps holds, for every client that lost its connection at least once,
	// the longest time in milliseconds it was without one (a client still
	// without one counts until now). Worker processes send it only in their
	// last status line.
	Gaps []int64 `json:"gaps,omitempty"`
}

func (s *FleetStatus) add(o FleetStatus) {
	s.Clients += o.Clients
	s.Connected += o.Connected
	if s.Nodes == nil {
		s.Nodes = map[string]int{}
	}
	for k, v := range o.Nodes {
		s.Nodes[k] += v
	}
	s.Connects += o.Connects
	s.Disconnects += o.Disconnects
	if s.FailedAttempts == nil {
		s.FailedAttempts = map[string]int64{}
	}
	for k, v := range o.FailedAttempts {
		s.FailedAttempts[k] += v
	}
	s.LastConnect = max(s.LastConnect, o.LastConnect)
	s.GaveUp += o.GaveUp
	s.Rebalanced += o.Rebalanced
	s.RebalancedTwice += o.RebalancedTwice
	if s.CloseCodes == nil {
		s.CloseCodes = map[int]int64{}
	}
	for k, v := range o.CloseCodes {
		s.CloseCodes[k] += v
	}
	s.Gaps = append(s.Gaps, o.Gaps...)
}

// fleet is a set of managed clients, here or in a worker process.
type fleet interface {
	Status() FleetStatus
	Stop() error
}

// Fleet runs managed clients in this process.
type Fleet struct {
	clients []*client.Managed
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	connects, disconnects atomic.Int64
	lastConnect           atomic.Int64
	gaveUp                atomic.Int64
	rebalanced            atomic.Int64
	rebalancedTwice       atomic.Int64
	mu                    sync.Mutex
	failed                map[string]int64
	closeCodes            map[int]int64
	transports            []*http.Transport
	// downSince is when each client's connection ended (Unix ns, 0 while
	// connected or before its first connect); longest its longest time
	// without one so far (ns).
	downSince, longest []atomic.Int64
	// finalGaps are the gaps as Stop found them, before the clients closed.
	finalGaps []int64
	stopped   bool
}

// StartFleet starts cfg.Clients managed clients at cfg.Rate. They keep
// themselves connected until Stop.
func StartFleet(ctx context.Context, cfg FleetConfig) (*Fleet, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &Fleet{cancel: cancel, failed: map[string]int64{}, closeCodes: map[int]int64{},
		downSince: make([]atomic.Int64, cfg.Clients), longest: make([]atomic.Int64, cfg.Clients)}
	pool := &sync.Pool{} // shared write buffers: idle clients hold none
	rt := &routes{file: cfg.RoutesFile}
	var tlsConf *tls.Config
	if cfg.RootsPEM != "" {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM([]byte(cfg.RootsPEM))
		tlsConf = &tls.Config{RootCAs: roots}
	}
	mkOpts := func(local net.Addr) []client.Option {
		nd := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: local, Control: srcbind.Control}
		dial := rt.dialer(nd.DialContext)
		tr := &http.Transport{
			DialContext:         dial,
			TLSClientConfig:     tlsConf,
			MaxIdleConns:        cfg.Concurrency * 2,
			MaxIdleConnsPerHost: cfg.Concurrency * 2,
			IdleConnTimeout:     30 * time.Second,
		}
		f.transports = append(f.transports, tr)
		return []client.Option{
			client.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}),
			client.WithDialer(&websocket.Dialer{
				NetDialContext:   dial,
				TLSClientConfig:  tlsConf,
				HandshakeTimeout: 10 * time.Second,
				ReadBufferSize:   512,
				WriteBufferSize:  512,
				WriteBufferPool:  pool,
			}),
		}
	}
	var optSets [][]client.Option
	if len(cfg.SourceIPs) == 0 {
		optSets = append(optSets, mkOpts(nil))
	}
	for _, ip := range cfg.SourceIPs {
		optSets = append(optSets, mkOpts(&net.TCPAddr{IP: ip.AsSlice()}))
	}
	users := []client.Credentials{{Username: cfg.Username, Password: cfg.Password}}
	if len(cfg.Users) > 0 {
		users = users[:0]
		for _, u := range cfg.Users {
			users = append(users, client.Credentials{Username: u.Username, Password: u.Password})
		}
	}
	lim := rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/50)))
	inflight := make(chan struct{}, cfg.Concurrency)
	f.clients = make([]*client.Managed, cfg.Clients)
	started := make(chan struct{})
	go func() {
		defer close(started)
		for i := range f.clients {
			var once sync.Once
			var moves atomic.Int32
			release := func() { once.Do(func() { <-inflight }) }
			mc := client.DefaultManagedConfig()
			mc.Options = optSets[(i+cfg.SourceOffset)%len(optSets)]
			mc.BackoffBase, mc.BackoffMax = cfg.BackoffBase, cfg.BackoffMax
			mc.OnConnect = func(*wire.ConnectResponse) {
				now := time.Now().UnixNano()
				f.connects.Add(1)
				f.lastConnect.Store(now)
				if d := f.downSince[i].Swap(0); d != 0 && now-d > f.longest[i].Load() {
					f.longest[i].Store(now - d) // only this client's goroutine writes it
				}
				release()
			}
			mc.OnDisconnect = func(code int, err error) {
				if code == wire.CloseRebalance {
					f.rebalanced.Add(1)
					if moves.Add(1) == 2 {
						f.rebalancedTwice.Add(1)
					}
				}
				if code != 0 {
					f.downSince[i].Store(time.Now().UnixNano())
					f.disconnects.Add(1)
					f.mu.Lock()
					f.closeCodes[code]++
					f.mu.Unlock()
					return
				}
				if err != nil {
					f.mu.Lock()
					f.failed[loadtest.ErrorKind(err)]++
					f.mu.Unlock()
				}
			}
			m, err := client.NewManaged(cfg.AuthURL, users[(i+cfg.SourceOffset*len(f.clients))%len(users)], mc)
			if err != nil {
				// validate checked the backoff; count it all the same.
				f.gaveUp.Add(1)
				continue
			}
			f.mu.Lock()
			f.clients[i] = m
			f.mu.Unlock()
			if lim.Wait(ctx) != nil {
				return
			}
			select {
			case inflight <- struct{}{}:
			case <-ctx.Done():
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer release()
				if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
					f.gaveUp.Add(1)
				}
			}()
		}
	}()
	f.wg.Add(1)
	go func() { defer f.wg.Done(); <-started }()
	return f, nil
}

// Status is a snapshot of the fleet.
func (f *Fleet) Status() FleetStatus {
	s := FleetStatus{Clients: len(f.clients), Nodes: map[string]int{}, FailedAttempts: map[string]int64{}, CloseCodes: map[int]int64{}}
	f.mu.Lock()
	clients := append([]*client.Managed(nil), f.clients...)
	for k, v := range f.failed {
		s.FailedAttempts[k] = v
	}
	for k, v := range f.closeCodes {
		s.CloseCodes[k] = v
	}
	stopped, final := f.stopped, f.finalGaps
	f.mu.Unlock()
	if stopped {
		s.Gaps = final
	} else {
		s.Gaps = f.gaps()
	}
	for _, m := range clients {
		if m == nil {
			continue
		}
		if n, ok := m.Current(); ok {
			s.Connected++
			s.Nodes[n]++
		}
	}
	s.Connects = f.connects.Load()
	s.Disconnects = f.disconnects.Load()
	s.LastConnect = f.lastConnect.Load()
	s.GaveUp = int(f.gaveUp.Load())
	s.Rebalanced = f.rebalanced.Load()
	s.RebalancedTwice = int(f.rebalancedTwice.Load())
	return s
}

// gaps lists every client's longest time without a connection in ms (see
// FleetStatus.Gaps).
func (f *Fleet) gaps() []int64 {
	var out []int64
	now := time.Now().UnixNano()
	for i := range f.longest {
		g := f.longest[i].Load()
		if d := f.downSince[i].Load(); d != 0 {
			g = max(g, now-d)
		}
		if g > 0 {
			out = append(out, (g+int64(time.Millisecond)-1)/int64(time.Millisecond))
		}
	}
	return out
}

// Stop closes every client and waits for them. The gaps stay as they were
// before the clients closed.
func (f *Fleet) Stop() error {
	g := f.gaps()
	f.mu.Lock()
	if !f.stopped {
		f.stopped, f.finalGaps = true, g
	}
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	for _, tr := range f.transports {
		tr.CloseIdleConnections()
	}
	return nil
}

// RunFleetWorker is the body of the drill-worker subcommand: a FleetConfig
// as JSON on in, then a FleetStatus JSON line on out every 100ms until in
// is closed (or ctx ends); then the clients close and a last status line is
// written.
func RunFleetWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(in)
	var cfg FleetConfig
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("drill worker: read config: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// The parent closes our stdin to stop us.
		_, _ = io.Copy(io.Discard, io.MultiReader(dec.Buffered(), in))
		cancel()
	}()
	f, err := StartFleet(ctx, cfg)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// The gaps as they were before the clients close.
			st := f.Status()
			_ = f.Stop()
			return enc.Encode(st)
		case <-t.C:
			st := f.Status()
			st.Gaps = nil // only in the last line: thousands of numbers
			if err := enc.Encode(st); err != nil {
				_ = f.Stop()
				return err
			}
		}
	}
}

// remoteFleet is a fleet in a worker process.
type remoteFleet struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	mu    sync.Mutex
	last  FleetStatus
	err   error
	errb  bytes.Buffer
}

func startRemoteFleet(argv []string, cfg FleetConfig) (*remoteFleet, error) {
	input, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	r := &remoteFleet{done: make(chan struct{}), last: FleetStatus{Clients: cfg.Clients}}
	r.cmd = exec.Command(argv[0], argv[1:]...)
	r.cmd.Stderr = lockedWriter{&r.mu, &r.errb}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("benchcompare: start fleet worker: %w", err)
	}
	if _, err := r.stdin.Write(input); err != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		return nil, err
	}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var s FleetStatus
			if err := json.Unmarshal(sc.Bytes(), &s); err == nil {
				r.mu.Lock()
				r.last = s
				r.mu.Unlock()
			}
		}
		err := r.cmd.Wait()
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}()
	return r, nil
}

func (r *remoteFleet) Status() FleetStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *remoteFleet) Stop() error {
	_ = r.stdin.Close()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return fmt.Errorf("fleet worker: %v: %s", r.err, bytes.TrimSpace(r.errb.Bytes()))
	}
	return nil
}

// fleets is a fleet spread over several in-process or worker fleets.
type fleets []fleet

// startFleets splits cfg over workers: in this process when workerArgv is
// empty, else in worker processes started as workerArgv (e.g.
// [".../wsdirect-bench", "drill-worker"]).
func startFleets(ctx context.Context, cfg FleetConfig, workers int, workerArgv []string) (fleets, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	workers = max(1, min(workers, cfg.Clients))
	var fs fleets
	for w := 0; w < workers; w++ {
		wc := cfg
		wc.Clients = loadtest.WorkerShare(cfg.Clients, workers, w)
		wc.Rate = cfg.Rate / float64(workers)
		wc.Concurrency = max(1, cfg.Concurrency/workers)
		wc.SourceOffset = cfg.SourceOffset + w
		var f fleet
		var err error
		if len(workerArgv) == 0 {
			f, err = StartFleet(ctx, wc)
		} else {
			f, err = startRemoteFleet(workerArgv, wc)
		}
		if err != nil {
			_ = fs.Stop()
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func (fs fleets) Status() FleetStatus {
	s := FleetStatus{Nodes: map[string]int{}, FailedAttempts: map[string]int64{}}
	for _, f := range fs {
		s.add(f.Status())
	}
	return s
}

func (fs fleets) Stop() error {
	var errs []error
	for _, f := range fs {
		errs = append(errs, f.Stop())
	}
	return errors.Join(errs...)
}

// routes rewrites the host of dialed addresses by a JSON map file (see
// FleetConfig.RoutesFile).
type routes struct {
	file  string
	mu    sync.RWMutex
	m     map[string]string
	read  time.Time
	mtime time.Time
}

// dialer wraps dial so that it dials the routed address.
func (r *routes) dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if r.file == "" {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if to, ok := r.lookup(host); ok {
			addr = net.JoinHostPort(to, port)
		}
		return dial(ctx, network, addr)
	}
}

// lookup maps host, looking at the file again at most every 100 ms and
// reading it when it changed: a public address can move to another
// instance (an Elastic IP taken over by a replacement).
func (r *routes) lookup(host string) (string, bool) {
	r.mu.RLock()
	to, ok := r.m[host]
	fresh := time.Since(r.read) < 100*time.Millisecond
	r.mu.RUnlock()
	if fresh {
		return to, ok
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.read) >= 100*time.Millisecond {
		if st, err := os.Stat(r.file); err == nil && !st.ModTime().Equal(r.mtime) {
			if data, err := os.ReadFile(r.file); err == nil {
				var m map[string]string
				if json.Unmarshal(data, &m) == nil {
					r.m, r.mtime = m, st.ModTime()
				}
			}
		}
		r.read = time.Now()
	}
	to, ok = r.m[host]
	return to, ok
}

// waitStatus polls fs every 50ms until cond holds, timeout passes or ctx
// ends, and returns the last status seen either way.
func waitStatus(ctx context.Context, fs fleet, timeout time.Duration, cond func(FleetStatus) bool) (FleetStatus, error) {
	var s FleetStatus
	err := probe.Poll(ctx, timeout, 50*time.Millisecond, "the fleet's status", func() error {
		s = fs.Status()
		return probe.Check(cond(s), "%d of %d clients connected, per node %v", s.Connected, s.Clients, s.Nodes)
	})
	return s, err
}
