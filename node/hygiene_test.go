package node

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

func TestEcho(t *testing.T) {
	f := newFixture(t, nil)
	ws := f.mustDial("echo")
	big := bytes.Repeat([]byte("x"), 10_000) // larger than every buffer
	for _, m := range []struct {
		typ  int
		data []byte
	}{{websocket.TextMessage, []byte("hello")}, {websocket.BinaryMessage, []byte{0, 1, 2, 255}}, {websocket.BinaryMessage, big}} {
		if err := ws.WriteMessage(m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, got, err := ws.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("echo: type %d len %d err %v; want type %d len %d", typ, len(got), err, m.typ, len(m.data))
		}
	}
}

// TestReadLimit: a message over ReadLimit closes the connection with 1009.
func TestReadLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ReadLimit = 1024 })
	ws := f.mustDial("big")
	if err := ws.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), 1024)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatalf("a message at the limit must pass: %v", err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, bytes.Repeat([]byte("a"), 4096)); err != nil {
		t.Fatal(err)
	}
	ce := readClose(t, ws, 5*time.Second)
	if ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want 1009", ce.Code)
	}
	probe.Until(t, 10*time.Second, "connection released", func() error { return probe.Equal("Conns", f.node.Conns(), 0) })
}

// TestDeadPeerDropped: a client that completes the handshake and then never
// reads (so never answers a ping) is dropped, while a live client that
// answers pings stays. When the dead one goes is not asserted (a loaded
// machine delays it); that it goes, and the live one does not, is.
func TestDeadPeerDropped(t *testing.T) {
	// PongWait is long next to PingInterval so that the live client may
	// stall for well over a second on a loaded machine and still answer in
	// time.
	const pongWait = 2 * time.Second
	f := newFixture(t, func(c *Config) {
		c.PingInterval = 100 * time.Millisecond
		c.PongWait = pongWait
	})
	live := f.mustDial("live")
	liveErr := make(chan error, 1)
	go func() {
		// Reading makes gorilla answer pings.
		_, _, err := live.ReadMessage()
		liveErr <- err
	}()
	dead := f.rawUpgrade(f.mint("dead"))
	probe.Until(t, 10*time.Second, "two connections", func() error { return probe.Equal("Conns", f.node.Conns(), 2) })
	probe.Until(t, 30*time.Second, "dead peer dropped", func() error { return probe.Equal("Conns", f.node.Conns(), 1) })
	// The socket is really closed: after the pings, reading hits EOF.
	_ = dead.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, dead); err != nil {
		t.Fatalf("dead peer socket not closed by the node: %v", err)
	}
	// The live one, older than the dead one, has outlived a PongWait by
	// answering pings; it stays for another.
	time.Sleep(pongWait)
	select {
	case err := <-liveErr:
		t.Fatalf("live client dropped: %v", err)
	default:
	}
	if f.node.Conns() != 1 {
		t.Fatalf("Conns = %d, want the live client", f.node.Conns())
	}
}

// TestHandshakeTimeout: a client that sends half a request is dropped once
// HandshakeTimeout passes instead of holding a socket forever. Nothing but
// HandshakeTimeout bounds a request being read (HTTPServer), so a drop
// within the client's generous deadline is the configured timeout at work.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := newFixture(t, func(c *Config) { c.HandshakeTimeout = timeout })
	start := time.Now() // before the dial, so before the node's clock starts
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /ws?token=x HTTP/1.1\r\nHost: a\r\nUpgrade: web")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the node kept a half-sent request open")
	}
	// The node waited for the rest of the request until the timeout; this
	// lower bound holds however slow the machine is.
	if el := time.Since(start); el < timeout {
		t.Fatalf("dropped after %s, before HandshakeTimeout (%s)", el, timeout)
	}
}

func TestBadHandshakeCounted(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := http.Get(f.httpURL(wire.WSPath + "?token=" + f.mint("x")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"error":"bad_request"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if got := f.metric("wsdirect_node_rejects_total", ReasonBadRequest); got != 1 {
		t.Fatalf("rejects{bad_request} = %v", got)
	}
	// Wrong WebSocket version: gorilla's own check, answered through our
	// error callback.
	req, _ := http.NewRequest("GET", f.httpURL(wire.WSPath), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "8")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	// The token is checked (and burnt) first; a valid one reaches gorilla.
	q := req.URL.Query()
	q.Set("token", f.mint("x"))
	req.URL.RawQuery = q.Encode()
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"error":"bad_request"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if f.node.slots.Load() != 0 {
		t.Fatal("slot leaked")
	}
}

func TestEndpoints(t *testing.T) {
	f := newFixture(t, nil)
	f.mustDial("m")
	probe.Until(t, 10*time.Second, "registered", func() error { return probe.Equal("Conns", f.node.Conns(), 1) })
	get := func(path string) (int, string) {
		resp, err := http.Get(f.httpURL(path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("metrics %d", code)
	}
	for _, want := range []string{
		"wsdirect_node_connections 1",
		"wsdirect_node_accepts_total 1",
		`wsdirect_node_rejects_total{reason="full"} 0`,
		`wsdirect_node_rejects_total{reason="replayed"} 0`,
		`wsdirect_node_rejects_total{reason="draining"} 0`,
		"wsdirect_node_drains_total 0",
		"wsdirect_node_handshake_seconds_count 1",
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestTwoNodesOneProcess: each Node has its own registry.
func TestTwoNodesOneProcess(t *testing.T) {
	a := newFixture(t, nil)
	b := newFixture(t, nil)
	a.mustDial("x")
	probe.Until(t, 10*time.Second, "registered", func() error { return probe.Equal("Conns", a.node.Conns(), 1) })
	if a.metric("wsdirect_node_accepts_total", "") != 1 || b.metric("wsdirect_node_accepts_total", "") != 0 {
		t.Fatal("nodes share metrics")
	}
}

func TestConfigValidation(t *testing.T) {
	// Each key is the field the error must name: New fills nothing in.
	bad := map[string]func(*Config){
		"Name":                     func(c *Config) { c.Name = "" },
		"MaxConns":                 func(c *Config) { c.MaxConns = 0 },
		"ReadLimit":                func(c *Config) { c.ReadLimit = 0 },
		"HandshakeTimeout":         func(c *Config) { c.HandshakeTimeout = 0 },
		"PingInterval":             func(c *Config) { c.PingInterval = c.PongWait },
		"PongWait":                 func(c *Config) { c.PongWait = 0 },
		"WriteWait":                func(c *Config) { c.WriteWait = 0 },
		"CloseGrace":               func(c *Config) { c.CloseGrace = 0 },
		"ReadBufferSize":           func(c *Config) { c.ReadBufferSize = 10 },
		"WriteBufferSize":          func(c *Config) { c.WriteBufferSize = 0 },
		"Upstream":                 func(c *Config) { c.Upstream = "http://127.0.0.1:1/x" },
		"DrainBatch":               func(c *Config) { c.DrainBatch = 0 },
		"DrainInterval":            func(c *Config) { c.DrainInterval = -1 },
		"DrainDeadline":            func(c *Config) { c.DrainDeadline = 0 },
		"MaxConnsPerUser":          func(c *Config) { c.MaxConnsPerUser = -1 },
		"View":                     func(c *Config) { c.Rebalance.Enabled = true },
		"ReleaseMemory.After":      func(c *Config) { c.ReleaseMemory.After = -1 },
		"ReleaseMemory.MinChanges": func(c *Config) { c.ReleaseMemory.MinChanges = 0 },
		"Rebalance.MaxRate": func(c *Config) {
			c.Rebalance, c.View = DefaultRebalanceConfig(), &fakeView{}
			c.Rebalance.MaxRate = 0
		},
		"Rebalance.Tolerance": func(c *Config) {
			c.Rebalance, c.View = DefaultRebalanceConfig(), &fakeView{}
			c.Rebalance.Tolerance = 1
		},
		"Rebalance.MinMove": func(c *Config) {
			c.Rebalance, c.View = DefaultRebalanceConfig(), &fakeView{}
			c.Rebalance.MinMove = 0
		},
		"Rebalance.Interval": func(c *Config) {
			c.Rebalance, c.View = DefaultRebalanceConfig(), &fakeView{}
			c.Rebalance.Interval = 0
		},
		"Rebalance.Settle": func(c *Config) {
			c.Rebalance, c.View = DefaultRebalanceConfig(), &fakeView{}
			c.Rebalance.Settle = 0
		},
		"Rebalance.Exempt": func(c *Config) {
			c.Rebalance, c.View = DefaultRebalanceConfig(), &fakeView{}
			c.Rebalance.Exempt = 0
		},
	}
	v := token.NewVerifier(testNode, token.KeySet{}).RejectIssuedBefore(time.Now())
	for field, mod := range bad {
		c := testConfig()
		mod(c)
		if _, err := New(c, v, nil); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
	if _, err := New(testConfig(), nil, nil); err == nil {
		t.Error("nil verifier accepted")
	}
	// A verifier that would accept tokens used before a restart.
	if _, err := New(testConfig(), token.NewVerifier(testNode, token.KeySet{}), nil); err == nil || !strings.Contains(err.Error(), "RejectIssuedBefore") {
		t.Errorf("verifier without a start time: %v", err)
	}
	n, err := New(testConfig(), v, nil)
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	n.Close()
}
