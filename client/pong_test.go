package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// deadlineConn records the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	mu        sync.Mutex
	deadlines []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, t)
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) maxDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m time.Time
	for _, d := range c.deadlines {
		if d.After(m) {
			m = d
		}
	}
	return m
}

// TestPongAnswersPingWithLongDeadline: the client answers a node's ping with
// the same payload, and gives the pong PongWriteWait rather than gorilla's
// 1 s, which a descheduled client misses and then loses the connection.
func TestPongAnswersPingWithLongDeadline(t *testing.T) {
	pongs := make(chan string, 1)
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.SetPongHandler(func(data string) error { pongs <- data; return nil })
		if err := ws.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(5*time.Second)); err != nil {
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, _ = ws.ReadMessage()
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	var dc *deadlineConn
	d := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		dc = &deadlineConn{Conn: c}
		return dc, nil
	}}
	resp := &wire.ConnectResponse{URL: "ws://" + strings.TrimPrefix(srv.URL, "http://") + wire.WSPath, Token: "t", NodeID: "n1"}
	ws, err := DialNode(context.Background(), resp, WithDialer(d))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	go func() { _, _, _ = ws.ReadMessage() }() // control frames are handled inside reads
	start := time.Now()
	select {
	case got := <-pongs:
		if got != "p1" {
			t.Fatalf("pong %q, want p1", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
	if min := start.Add(PongWriteWait - time.Second); dc.maxDeadline().Before(min) {
		t.Fatalf("pong write deadline %s, want at least %s", dc.maxDeadline().Format(time.StampMilli), min.Format(time.StampMilli))
	}
}
