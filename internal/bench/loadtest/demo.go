package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// DemoConfig tunes Demo. Start from DefaultDemoConfig; Demo rejects invalid
// fields.
type DemoConfig struct {
	// BinDir holds wsdirect-node and wsdirect-auth. Required.
	BinDir string
	// Nodes in the local cluster, at least 2 (one is killed).
	Nodes int
	// Clients to connect, at least 1.
	Clients int
	// Rate is the target connect rate per second. Must be > 0.
	Rate float64
	// Concurrency bounds clients whose first connect is in flight, so a
	// slow auth service sees a queue of bounded length instead of a pile
	// of requests that time out and come back. At least 1.
	Concurrency int
	// ConnectTimeout bounds the wait for every client to connect. Must be
	// > 0.
	ConnectTimeout time.Duration
	// ReconnectTimeout bounds the wait, after the kill, for every client of
	// the killed node to be connected elsewhere. Must be > 0.
	ReconnectTimeout time.Duration
	// BackoffBase and BackoffMax are the clients' reconnect backoff (see
	// client.ManagedConfig).
	BackoffBase, BackoffMax time.Duration
	// Cluster is used for everything in localcluster.Config except BinDir
	// and Nodes, which Demo sets. Cluster.MaxConns 0 means Clients: room
	// for everyone on the survivors after the kill.
	Cluster localcluster.Config
	// Out receives the demo's narrative; nil discards it.
	Out io.Writer
}

// DefaultDemoConfig is `make demo`; the caller sets BinDir.
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{
		Nodes: 3,
		// 10,000 clients in one process hold 10k file descriptors, under
		// the 20,000 limit; the nodes hold the server sides.
		Clients: 10_000,
		// 2,000/s connects the 10,000 clients in 5 s.
		Rate:        2000,
		Concurrency: 64,
		// Twelve times the 5 s the clients need at Rate: generous on a
		// loaded machine.
		ConnectTimeout:   60 * time.Second,
		ReconnectTimeout: 30 * time.Second,
		// The first retry window spreads a killed node's clients over half
		// a second instead of sending them all to auth at once.
		BackoffBase: 500 * time.Millisecond,
		BackoffMax:  4 * time.Second,
		Cluster:     localcluster.DefaultConfig(),
	}
}

// validate reports the first problem with c; the cluster is checked by
// localcluster.Start.
func (c *DemoConfig) validate() error {
	switch {
	case c.BinDir == "":
		return errors.New("demo: BinDir is required")
	case c.Nodes < 2:
		return fmt.Errorf("demo: Nodes must be at least 2 (one is killed), got %d", c.Nodes)
	case c.Clients < 1:
		return fmt.Errorf("demo: Clients must be at least 1, got %d", c.Clients)
	case !(c.Rate > 0):
		return fmt.Errorf("demo: Rate must be > 0, got %g", c.Rate)
	case c.Concurrency < 1:
		return fmt.Errorf("demo: Concurrency must be at least 1, got %d", c.Concurrency)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("demo: ConnectTimeout must be > 0, got %s", c.ConnectTimeout)
	case c.ReconnectTimeout <= 0:
		return fmt.Errorf("demo: ReconnectTimeout must be > 0, got %s", c.ReconnectTimeout)
	}
	return nil
}

// DemoResult is what Demo measured.
type DemoResult struct {
	Connected     int
	ConnectTime   time.Duration
	ConnectRate   float64
	Handshake     *Histogram
	Before, After map[string]int
	Killed        string
	Affected      int
	// Reconnect is the time from the kill until the last affected client
	// was connected to another node.
	Reconnect time.Duration
	Total     time.Duration
}

type demoClient struct {
	m           *client.Managed
	lastConnect atomic.Int64 // unix nanos of the latest connect
	connects    atomic.Int32
}

// Demo runs the `make demo` story: start auth and cfg.Nodes nodes, connect
// cfg.Clients managed clients through auth, print the distribution and
// timings, SIGKILL the busiest node, wait until its clients are connected
// elsewhere (through auth, with fresh tokens), print that, and stop. It
// returns an error when a step fails or misses its deadline.
func Demo(ctx context.Context, cfg DemoConfig) (*DemoResult, error) {
	begin := time.Now()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "[%6.2fs] ", time.Since(begin).Seconds())
		fmt.Fprintf(out, format+"\n", args...)
	}

	// 1. The cluster.
	ccfg := cfg.Cluster
	ccfg.BinDir, ccfg.Nodes = cfg.BinDir, cfg.Nodes
	if ccfg.MaxConns == 0 {
		// Room for everyone on the survivors after the kill.
		ccfg.MaxConns = cfg.Clients
	}
	say("1. starting wsdirect-auth and %d wsdirect-node processes on loopback (encrypted gossip)", cfg.Nodes)
	cl, err := localcluster.Start(ctx, ccfg)
	if err != nil {
		return nil, err
	}
	defer cl.Stop()
	ws := "ws"
	if ccfg.TLS {
		ws = "wss"
		say("   TLS: auth on https://, nodes on wss://, with certificates from a LOCAL TEST CA made for this")
		say("   demo (%s); it is trusted by the demo's clients and nothing else", cl.CAFile())
	}
	for i, p := range cl.Auths {
		say("   %-7s %s  gossip %s", p.Name, cl.AuthURLs()[i], p.GossipAddr)
	}
	for _, p := range cl.Nodes {
		say("   %-7s %s://%s/ws  gossip %s", p.Name, ws, p.HTTPAddr, p.GossipAddr)
	}
	say("   cluster ready: auth sees all %d nodes", cfg.Nodes)

	// 2. The clients.
	res := &DemoResult{Handshake: NewHistogram()}
	runCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	var histMu sync.Mutex
	var errMu sync.Mutex
	attemptErrors := map[string]int{}
	tc := cl.ClientTLS() // nil without TLS
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     30 * time.Second,
		TLSClientConfig:     tc,
	}
	defer transport.CloseIdleConnections()
	opts := []client.Option{
		client.WithHTTPClient(&http.Client{Transport: transport, Timeout: 10 * time.Second}),
		client.WithDialer(&websocket.Dialer{
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   512,
			WriteBufferSize:  512,
			WriteBufferPool:  &sync.Pool{},
			TLSClientConfig:  tc,
		}),
	}
	creds := client.Credentials{Username: cl.Username(), Password: cl.Password()}
	clients := make([]*demoClient, cfg.Clients)
	var firstConnects atomic.Int32
	var lastFirstConnect atomic.Int64
	var runErrs sync.Map // client index → error that stopped Run
	var wg sync.WaitGroup
	say("2. connecting %d clients through auth at %.0f/s (each: POST /v1/connect, then WebSocket to the assigned node)", cfg.Clients, cfg.Rate)
	lim := rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/50)))
	inflight := make(chan struct{}, cfg.Concurrency)
	connectStart := time.Now()
	connectCtx, connectCancel := context.WithDeadline(ctx, connectStart.Add(cfg.ConnectTimeout))
	defer connectCancel()
	for i := range clients {
		dc := &demoClient{}
		var releaseOnce sync.Once
		release := func() { releaseOnce.Do(func() { <-inflight }) }
		mcfg := client.DefaultManagedConfig()
		mcfg.Options = opts
		mcfg.BackoffBase, mcfg.BackoffMax = cfg.BackoffBase, cfg.BackoffMax
		mcfg.OnTiming = func(auth, upgrade time.Duration) {
			if dc.connects.Load() == 0 {
				histMu.Lock()
				res.Handshake.Record(auth + upgrade)
				histMu.Unlock()
			}
		}
		mcfg.OnConnect = func(*wire.ConnectResponse) {
			now := time.Now().UnixNano()
			dc.lastConnect.Store(now)
			if dc.connects.Add(1) == 1 {
				firstConnects.Add(1)
				lastFirstConnect.Store(now)
				release()
			}
		}
		mcfg.OnDisconnect = func(code int, err error) {
			if code == 0 && err != nil {
				errMu.Lock()
				attemptErrors[ErrorKind(err)]++
				errMu.Unlock()
			}
		}
		if dc.m, err = client.NewManaged(cl.AuthURL(), creds, mcfg); err != nil {
			return nil, err
		}
		clients[i] = dc
		if err := lim.Wait(connectCtx); err != nil {
			return nil, fmt.Errorf("demo: only %d of %d clients connected within %v (errors: %v)",
				firstConnects.Load(), cfg.Clients, cfg.ConnectTimeout, snapshot(&errMu, attemptErrors))
		}
		select {
		case inflight <- struct{}{}:
		case <-connectCtx.Done():
			return nil, fmt.Errorf("demo: only %d of %d clients connected within %v (errors: %v)",
				firstConnects.Load(), cfg.Clients, cfg.ConnectTimeout, snapshot(&errMu, attemptErrors))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer release()
			if err := dc.m.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				runErrs.Store(i, err)
			}
		}()
	}
	defer wg.Wait()
	defer stopClients() // runs before wg.Wait

	err = probe.Poll(connectCtx, time.Until(connectStart.Add(cfg.ConnectTimeout)), demoPoll, fmt.Sprintf("all %d clients to connect", cfg.Clients), func() error {
		return probe.Check(int(firstConnects.Load()) == cfg.Clients, "%d connected", firstConnects.Load())
	})
	if err != nil {
		return nil, fmt.Errorf("demo: %w (errors: %v, stopped: %s)", err, snapshot(&errMu, attemptErrors), firstRunErr(&runErrs))
	}
	res.Connected = cfg.Clients
	res.ConnectTime = time.Unix(0, lastFirstConnect.Load()).Sub(connectStart)
	res.ConnectRate = float64(cfg.Clients) / res.ConnectTime.Seconds()

	// 3. Distribution and timings.
	res.Before = distribution(clients)
	say("3. all %d clients connected in %v: %.0f connections/s", cfg.Clients, res.ConnectTime.Round(time.Millisecond), res.ConnectRate)
	histMu.Lock()
	say("   handshake (auth request + upgrade): p50 %v  p99 %v  max %v",
		roundDur(res.Handshake.Quantile(0.5)), roundDur(res.Handshake.Quantile(0.99)), roundDur(res.Handshake.Max()))
	histMu.Unlock()
	if e := snapshot(&errMu, attemptErrors); len(e) > 0 {
		say("   retried attempts by kind: %v", e)
	}
	writeNodeTable(out, cl, res.Before)

	// 4. Kill the busiest node.
	victim, most := "", -1
	for _, p := range cl.Nodes {
		if res.Before[p.Name] > most {
			victim, most = p.Name, res.Before[p.Name]
		}
	}
	res.Killed = victim
	var affected []*demoClient
	for _, dc := range clients {
		if n, ok := dc.m.Current(); ok && n == victim {
			affected = append(affected, dc)
		}
	}
	res.Affected = len(affected)
	say("4. SIGKILL %s (pid %d), which holds %d clients", victim, cl.Nodes[cl.NodeIndex(victim)].PID(), len(affected))
	killAt := time.Now()
	if err := cl.Kill(cl.NodeIndex(victim)); err != nil {
		return nil, err
	}
	moved := func() error {
		left := 0
		for _, dc := range affected {
			n, ok := dc.m.Current()
			if !ok || n == victim || dc.lastConnect.Load() < killAt.UnixNano() {
				left++
			}
		}
		return probe.Check(left == 0, "%d of %d not yet reconnected elsewhere", left, len(affected))
	}
	if err := probe.Poll(ctx, cfg.ReconnectTimeout, demoPoll, "the clients of "+victim+" to reconnect elsewhere", moved); err != nil {
		return nil, fmt.Errorf("demo: %w (errors: %v)", err, snapshot(&errMu, attemptErrors))
	}
	var last int64
	for _, dc := range affected {
		if t := dc.lastConnect.Load(); t > last {
			last = t
		}
	}
	res.Reconnect = time.Unix(0, last).Sub(killAt)
	// Every client (not only the affected ones) must be connected now.
	err = probe.Poll(ctx, cfg.ReconnectTimeout, demoPoll, fmt.Sprintf("all %d clients connected after the kill", cfg.Clients), func() error {
		return probe.Check(connectedCount(clients) == cfg.Clients, "%d connected", connectedCount(clients))
	})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	res.After = distribution(clients)
	say("   all %d clients of %s reconnected to other nodes through auth in %v (kill → last reconnect)",
		len(affected), victim, res.Reconnect.Round(time.Millisecond))
	if e := snapshot(&errMu, attemptErrors); len(e) > 0 {
		say("   failed attempts on the way, retried with backoff: %v", e)
	}
	writeNodeTable(out, cl, res.After)
	if _, ok := res.After[victim]; ok {
		return nil, fmt.Errorf("demo: clients still on killed node %s", victim)
	}

	// 5. Stop.
	say("5. stopping clients and cluster")
	stopClients()
	wg.Wait()
	cl.Stop()
	res.Total = time.Since(begin)
	say("done in %v", res.Total.Round(time.Millisecond))
	return res, nil
}

func writeNodeTable(out io.Writer, cl *localcluster.Cluster, counts map[string]int) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	total := 0
	for _, c := range counts {
		total += c
	}
	fmt.Fprintln(tw, "   node\tconnections\tshare\tnode RSS\tKiB/conn\t")
	for _, p := range cl.Nodes {
		c := counts[p.Name]
		rss, perConn := "-", "-"
		if p.Running() {
			if b, err := p.RSS(); err == nil {
				rss = fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
				if c > 0 {
					perConn = fmt.Sprintf("%.1f", float64(b)/1024/float64(c))
				}
			}
		} else {
			rss = "killed"
		}
		share := 0.0
		if total > 0 {
			share = 100 * float64(c) / float64(total)
		}
		fmt.Fprintf(tw, "   %s\t%d\t%.1f%%\t%s\t%s\t\n", p.Name, c, share, rss, perConn)
	}
	tw.Flush()
	fmt.Fprintf(out, "   max/mean over nodes with clients: %.3f\n", Balance(counts))
}

func distribution(clients []*demoClient) map[string]int {
	d := map[string]int{}
	for _, dc := range clients {
		if n, ok := dc.m.Current(); ok {
			d[n]++
		}
	}
	return d
}

func connectedCount(clients []*demoClient) int {
	n := 0
	for _, dc := range clients {
		if _, ok := dc.m.Current(); ok {
			n++
		}
	}
	return n
}

func snapshot(mu *sync.Mutex, m map[string]int) map[string]int {
	mu.Lock()
	defer mu.Unlock()
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func firstRunErr(m *sync.Map) string {
	s := "none"
	m.Range(func(k, v any) bool {
		s = fmt.Sprintf("client %v: %v", k, v)
		return false
	})
	return s
}

// demoPoll is how often the demo looks at its clients while it waits; the
// figures it reports come from the clients' own timestamps, not from when
// the wait noticed.
const demoPoll = 50 * time.Millisecond
