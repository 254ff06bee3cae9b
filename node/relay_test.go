package node

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// upstreamApp is a real gorilla server on 127.0.0.1 that hands every
// accepted connection, with the user header it saw, to the test.
type upstreamApp struct {
	srv   *httptest.Server
	conns chan upstreamConn
}

type upstreamConn struct {
	ws   *websocket.Conn
	user string
}

func newUpstream(t *testing.T) *upstreamApp {
	t.Helper()
	u := &upstreamApp{conns: make(chan upstreamConn, 4)}
	up := websocket.Upgrader{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		u.conns <- upstreamConn{ws: ws, user: r.Header.Get(wire.UserHeader)}
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstreamApp) url() string { return "ws" + strings.TrimPrefix(u.srv.URL, "http") + "/app" }

func (u *upstreamApp) next(t *testing.T) upstreamConn {
	t.Helper()
	select {
	case c := <-u.conns:
		t.Cleanup(func() { c.ws.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no upstream connection")
		return upstreamConn{}
	}
}

func relayFixture(t *testing.T) (*fixture, *upstreamApp) {
	up := newUpstream(t)
	f := newFixture(t, func(c *Config) { c.Upstream = up.url() })
	return f, up
}

func TestRelayFrames(t *testing.T) {
	f, app := relayFixture(t)
	client := f.mustDial("carol")
	up := app.next(t)
	if up.user != "carol" {
		t.Fatalf("upstream saw user %q", up.user)
	}
	_ = up.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))

	big := bytes.Repeat([]byte{7}, 20_000)
	// client → upstream, types preserved
	for _, m := range []struct {
		typ  int
		data []byte
	}{{websocket.TextMessage, []byte("hello")}, {websocket.BinaryMessage, big}} {
		if err := client.WriteMessage(m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, got, err := up.ws.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("upstream got type %d len %d err %v", typ, len(got), err)
		}
	}
	// upstream → client
	for _, m := range []struct {
		typ  int
		data []byte
	}{{websocket.BinaryMessage, []byte{1, 2, 3}}, {websocket.TextMessage, []byte("world")}} {
		if err := up.ws.WriteMessage(m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, got, err := client.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("client got type %d %q err %v", typ, got, err)
		}
	}
}

func TestRelayClientCloseReachesUpstream(t *testing.T) {
	f, app := relayFixture(t)
	client := f.mustDial("dave")
	up := app.next(t)
	if err := client.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4321, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	ce := readClose(t, up.ws, 5*time.Second)
	if ce.Code != 4321 || ce.Text != "bye" {
		t.Fatalf("upstream got close %d %q", ce.Code, ce.Text)
	}
	probe.Until(t, 10*time.Second, "relay torn down", func() error { return probe.Equal("Conns", f.node.Conns(), 0) })
}

func TestRelayUpstreamCloseReachesClient(t *testing.T) {
	f, app := relayFixture(t)
	client := f.mustDial("erin")
	up := app.next(t)
	if err := up.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4123, "up-bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	ce := readClose(t, client, 5*time.Second)
	if ce.Code != 4123 || ce.Text != "up-bye" {
		t.Fatalf("client got close %d %q", ce.Code, ce.Text)
	}
	probe.Until(t, 10*time.Second, "relay torn down", func() error { return probe.Equal("Conns", f.node.Conns(), 0) })
}

// TestRelayUpstreamVanishes: an upstream that drops the TCP connection
// without a close frame closes the client with CloseUpstreamUnavailable.
func TestRelayUpstreamVanishes(t *testing.T) {
	f, app := relayFixture(t)
	client := f.mustDial("frank")
	up := app.next(t)
	up.ws.NetConn().Close()
	ce := readClose(t, client, 5*time.Second)
	if ce.Code != wire.CloseUpstreamUnavailable {
		t.Fatalf("client got close %d, want %d", ce.Code, wire.CloseUpstreamUnavailable)
	}
	if !wire.ShouldReconnect(ce.Code) {
		t.Fatal("the client would not reconnect")
	}
	probe.Until(t, 10*time.Second, "relay torn down", func() error { return probe.Equal("Conns", f.node.Conns(), 0) })
}

// TestRelayUpstreamDown: when the upstream cannot be dialed the upgrade is
// refused before it happens, with 502 and a JSON reason.
func TestRelayUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "ws://" + ln.Addr().String() + "/app"
	ln.Close()
	f := newFixture(t, func(c *Config) { c.Upstream = dead })
	_, resp, we, err := f.dial(f.mint("gina"), false)
	if err == nil {
		t.Fatal("upgrade succeeded without an upstream")
	}
	if resp.StatusCode != http.StatusBadGateway || we.Code != CodeUpstreamUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d body %+v", resp.StatusCode, we)
	}
	if f.metric("wsdirect_node_rejects_total", ReasonUpstream) != 1 || f.node.slots.Load() != 0 {
		t.Fatal("metric or slot leak")
	}
}

// TestRelayDrain: draining closes the client with 4000 and the upstream too.
func TestRelayDrain(t *testing.T) {
	f, app := relayFixture(t)
	client := f.mustDial("hank")
	up := app.next(t)
	upClosed := make(chan *websocket.CloseError, 1)
	go func() {
		for {
			if _, _, err := up.ws.ReadMessage(); err != nil {
				ce, _ := err.(*websocket.CloseError)
				upClosed <- ce
				return
			}
		}
	}()
	go func() { _ = f.node.Drain(t.Context()) }()
	if ce := readClose(t, client, 5*time.Second); ce.Code != wire.CloseDraining {
		t.Fatalf("client got %d", ce.Code)
	}
	select {
	case ce := <-upClosed:
		if ce == nil || ce.Code != wire.CloseDraining {
			t.Fatalf("upstream got %+v", ce)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("upstream not closed")
	}
}
