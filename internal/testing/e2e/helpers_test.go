package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

var creds = client.Credentials{Username: testcluster.User, Password: testcluster.Password}

// clientOptions share one HTTP client with a pool large enough for the
// test's concurrency, so auth requests reuse connections instead of burning
// loopback ports.
func clientOptions(pool int) []client.Option { return clientOptionsTLS(pool, nil) }

// clientOptionsTLS is clientOptions for a cluster on https:// and wss://,
// trusting what tc trusts.
func clientOptionsTLS(pool int, tc *tls.Config) []client.Option {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        pool,
		MaxIdleConnsPerHost: pool,
		IdleConnTimeout:     30 * time.Second,
		TLSClientConfig:     tc,
	}
	return []client.Option{
		client.WithHTTPClient(&http.Client{Transport: tr, Timeout: time.Minute}),
		client.WithDialer(&websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512, TLSClientConfig: tc}),
	}
}

// taggingUpstream is an upstream app that answers every message with
// "<node>|<user>|<message>", so a client learns from the server side which
// node relays its connection and which user the node authenticated.
func taggingUpstream(t testing.TB, nodeName string) string {
	up := websocket.Upgrader{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get(wire.UserHeader)
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, []byte(nodeName+"|"+user+"|"+string(data))); err != nil {
				return
			}
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return "ws://" + ln.Addr().String() + "/"
}

// roundTripTimeout bounds one echo. It is generous because the suite runs
// under -race beside other packages on two shared cores; a lost message still
// fails the test.
const roundTripTimeout = 15 * time.Second

// roundTrip sends msg and returns the answer, bounded by timeout.
func roundTrip(c *websocket.Conn, msg string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	_ = c.SetWriteDeadline(deadline)
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(deadline)
	_, data, err := c.ReadMessage()
	_ = c.SetReadDeadline(time.Time{})
	return string(data), err
}

// maxOverMean is the balance figure of docs/design.md section 11.
func maxOverMean(counts map[string]int) float64 {
	if len(counts) == 0 {
		return 0
	}
	total, mx := 0, 0
	for _, n := range counts {
		total += n
		mx = max(mx, n)
	}
	if total == 0 {
		return 0
	}
	return float64(mx) / (float64(total) / float64(len(counts)))
}

// viewConns maps node name to the count an auth instance's view holds.
func viewConns(view []cluster.Member) map[string]int {
	out := map[string]int{}
	for _, m := range view {
		out[m.Name] = m.Conns
	}
	return out
}

// counterValue reads one labelled counter from a registry; -1 when absent.
func counterValue(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// fleet is a set of Managed clients running against one cluster, recording
// what happens to each.
type fleet struct {
	t       testing.TB
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	clients []*managedClient
}

type managedClient struct {
	m           *client.Managed
	connects    atomic.Int64
	disconnects atomic.Int64
	lastClose   atomic.Int64 // last close code seen (0 for a failed attempt)
	rebalanced  atomic.Int64 // closes with wire.CloseRebalance
	nodes       sync.Map     // node name -> true, every node it was assigned
	msgs        chan string
	runErr      atomic.Pointer[error]
	// connectedAt is when the latest connection came up (unix nanos).
	connectedAt atomic.Int64
}

// startFleet starts n Managed clients through authURL, at most 32 connecting
// at once, and waits until all are connected. Unless tune says otherwise
// they retry fast (50ms base, 1s cap), to keep the tests short.
func startFleet(t testing.TB, authURL string, n int, timeout time.Duration, tune ...func(*client.ManagedConfig)) *fleet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{t: t, cancel: cancel}
	t.Cleanup(f.stop)
	opts := clientOptions(64)
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		mc := &managedClient{msgs: make(chan string, 16)}
		first := make(chan struct{})
		var once sync.Once
		cfg := client.DefaultManagedConfig()
		cfg.Options = opts
		cfg.BackoffBase, cfg.BackoffMax = 50*time.Millisecond, time.Second
		cfg.OnConnect = func(resp *wire.ConnectResponse) {
			mc.connects.Add(1)
			mc.connectedAt.Store(time.Now().UnixNano())
			mc.nodes.Store(resp.NodeID, true)
			once.Do(func() { close(first) })
		}
		cfg.OnMessage = func(_ int, data []byte) {
			select {
			case mc.msgs <- string(data):
			default:
			}
		}
		cfg.OnDisconnect = func(code int, err error) {
			if code != 0 {
				mc.disconnects.Add(1)
			}
			if code == wire.CloseRebalance {
				mc.rebalanced.Add(1)
			}
			mc.lastClose.Store(int64(code))
		}
		for _, f := range tune {
			f(&cfg)
		}
		m, err := client.NewManaged(authURL, creds, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mc.m = m
		f.clients = append(f.clients, mc)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			err := mc.m.Run(ctx)
			if ctx.Err() == nil {
				mc.runErr.Store(&err)
			}
		}()
		sem <- struct{}{}
		go func() {
			select {
			case <-first:
			case <-ctx.Done():
			case <-time.After(timeout):
			}
			<-sem
		}()
	}
	probe.Until(t, timeout, fmt.Sprintf("all %d managed clients connected", n), func() error {
		return probe.Equal("connected", f.connected(), n)
	})
	return f
}

func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
}

// connected counts clients with a live connection.
func (f *fleet) connected() int {
	k := 0
	for _, c := range f.clients {
		if _, ok := c.m.Current(); ok {
			k++
		}
	}
	return k
}

// byNode maps node name to the clients currently connected to it.
func (f *fleet) byNode() map[string][]*managedClient {
	out := map[string][]*managedClient{}
	for _, c := range f.clients {
		if node, ok := c.m.Current(); ok {
			out[node] = append(out[node], c)
		}
	}
	return out
}

// failed returns the errors of clients whose Run gave up.
func (f *fleet) failed() []error {
	var errs []error
	for _, c := range f.clients {
		if p := c.runErr.Load(); p != nil {
			errs = append(errs, *p)
		}
	}
	return errs
}

// echoAll checks that every client's connection still echoes.
func (f *fleet) echoAll(timeout time.Duration) error {
	for i, c := range f.clients {
		for len(c.msgs) > 0 {
			<-c.msgs
		}
		msg := fmt.Sprintf("echo-%d-%d", i, time.Now().UnixNano())
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := c.m.Send(ctx, websocket.TextMessage, []byte(msg))
		cancel()
		if err != nil {
			return fmt.Errorf("client %d: send: %w", i, err)
		}
		select {
		case got := <-c.msgs:
			if got != msg {
				return fmt.Errorf("client %d: echo %q, want %q", i, got, msg)
			}
		case <-time.After(timeout):
			return fmt.Errorf("client %d: no echo within %v", i, timeout)
		}
	}
	return nil
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

// statusOf extracts the HTTP status from a client error (0 if none).
func statusOf(err error) int {
	var ae *client.AuthError
	if errors.As(err, &ae) {
		return ae.Status
	}
	var ne *client.NodeError
	if errors.As(err, &ne) {
		return ne.Status
	}
	return 0
}

// startCluster starts a testcluster from testcluster.DefaultOptions as tune
// changes them.
func startCluster(tb testing.TB, tune func(*testcluster.Options)) *testcluster.Cluster {
	tb.Helper()
	o := testcluster.DefaultOptions()
	tune(&o)
	return testcluster.Start(tb, o)
}
