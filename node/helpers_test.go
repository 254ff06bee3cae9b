package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

const testNode = "node-test"

// fakePub records what the node publishes.
type fakePub struct {
	mu       sync.Mutex
	conns    []int
	draining []bool
	ready    []bool
}

func (p *fakePub) SetReady(r bool) error {
	p.mu.Lock()
	p.ready = append(p.ready, r)
	p.mu.Unlock()
	return nil
}

func (p *fakePub) SetConns(n int) {
	p.mu.Lock()
	p.conns = append(p.conns, n)
	p.mu.Unlock()
}

func (p *fakePub) SetDraining(d bool) error {
	p.mu.Lock()
	p.draining = append(p.draining, d)
	p.mu.Unlock()
	return nil
}

func (p *fakePub) last() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) == 0 {
		return 0, false
	}
	return p.conns[len(p.conns)-1], true
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	t      *testing.T
	signer *token.Signer
	keys   token.KeySet
	node   *Node
	pub    *fakePub
	addr   string // host:port of the HTTP server
	logs   *syncBuffer

	mu     sync.Mutex
	minted []string // every token handed out, to prove none is logged
}

// testConfig is DefaultConfig with short timings for loopback tests.
func testConfig() *Config {
	c := DefaultConfig()
	c.Name = testNode
	c.MaxConns = 100
	c.HandshakeTimeout = 2 * time.Second
	c.PingInterval = time.Second
	c.PongWait = 3 * time.Second
	c.WriteWait = time.Second
	c.CloseGrace = 500 * time.Millisecond
	c.DrainBatch = 10
	c.DrainInterval = 20 * time.Millisecond
	c.DrainDeadline = 5 * time.Second
	c.AdminToken = "admin-secret"
	// No cluster view here; rebalance tests set one (rebalance_test.go).
	c.Rebalance.Enabled = false
	return c
}

// newFixture starts a node on 127.0.0.1 with a fresh signing key. mod may
// adjust the config.
func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	_, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, signer: token.NewSigner(priv), keys: token.KeySet{}, pub: &fakePub{}, logs: &syncBuffer{}}
	f.keys.Add(f.signer.PublicKey())
	conf := testConfig()
	conf.Logger = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if mod != nil {
		mod(conf)
	}
	n, err := New(conf, token.NewVerifier(testNode, f.keys).RejectIssuedBefore(time.Now()), f.pub)
	if err != nil {
		t.Fatal(err)
	}
	f.node = n
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	srv := n.HTTPServer(f.addr)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = n.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		logs := f.logs.String()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, tok := range f.minted {
			if strings.Contains(logs, tok) {
				t.Errorf("a token reached the logs")
			}
		}
	})
	return f
}

func (f *fixture) mint(user string) string {
	f.t.Helper()
	tok, _, err := f.signer.Mint(user, testNode)
	if err != nil {
		f.t.Fatal(err)
	}
	f.remember(tok)
	return tok
}

// remember records a token that must never show up in the logs.
func (f *fixture) remember(tok string) {
	f.mu.Lock()
	f.minted = append(f.minted, tok)
	f.mu.Unlock()
}

func (f *fixture) wsURL(tok string) string {
	u := "ws://" + f.addr + wire.WSPath
	if tok != "" {
		u += "?" + wire.TokenQueryParam + "=" + url.QueryEscape(tok)
	}
	return u
}

func (f *fixture) httpURL(path string) string { return "http://" + f.addr + path }

var testDialer = &websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}

// dial connects with tok in the query (or, with viaProtocol, in
// Sec-WebSocket-Protocol). On refusal it returns the HTTP status and the
// decoded JSON error.
func (f *fixture) dial(tok string, viaProtocol bool) (*websocket.Conn, *http.Response, *wire.Error, error) {
	f.t.Helper()
	u := f.wsURL(tok)
	var h http.Header
	if viaProtocol {
		u = f.wsURL("")
		h = http.Header{}
		h.Set("Sec-WebSocket-Protocol", wire.Subprotocol+", "+wire.SubprotocolTokenPrefix+tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := testDialer.DialContext(ctx, u, h)
	if err != nil && resp != nil {
		var we wire.Error
		body, _ := io.ReadAll(resp.Body)
		if jerr := json.Unmarshal(body, &we); jerr != nil {
			return nil, resp, nil, errors.Join(err, jerr)
		}
		return nil, resp, &we, err
	}
	return ws, resp, nil, err
}

// mustDial connects with a fresh token or fails the test.
func (f *fixture) mustDial(user string) *websocket.Conn {
	f.t.Helper()
	ws, resp, we, err := f.dial(f.mint(user), false)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		f.t.Fatalf("dial: %v (status %d, body %+v)", err, status, we)
	}
	f.t.Cleanup(func() { ws.Close() })
	return ws
}

// metric returns the value of a counter or gauge in the node's registry;
// label, when not empty, selects the series whose "reason" label matches.
func (f *fixture) metric(name, reason string) float64 {
	f.t.Helper()
	mfs, err := f.node.Registry().Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason != "" && labelValue(m, "reason") != reason {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	f.t.Fatalf("metric %s{reason=%q} not found", name, reason)
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// readClose reads from ws until it fails and returns the close error.
func readClose(t *testing.T, ws *websocket.Conn, within time.Duration) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		t.Fatalf("read ended without a close frame: %v", err)
		return nil
	}
}

// rawUpgrade opens a TCP connection and performs a WebSocket handshake by
// hand, returning the socket; the caller then controls every byte.
func (f *fixture) rawUpgrade(tok string) net.Conn {
	f.t.Helper()
	c, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	req := "GET " + wire.WSPath + "?" + wire.TokenQueryParam + "=" + url.QueryEscape(tok) + " HTTP/1.1\r\n" +
		"Host: " + f.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		f.t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Read the response head byte by byte so no frame bytes are consumed.
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(one); err != nil {
			f.t.Fatalf("reading handshake response: %v (got %q)", err, head)
		}
		head = append(head, one[0])
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		f.t.Fatalf("handshake refused: %q", head)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}
