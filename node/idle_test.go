package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/readiness"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// These tests cover reading on demand (read.go): data that arrives in
// pieces, together, or buffered where the socket does not show it must
// all be read, and an idle connection must hold no goroutine.

// clientFrame encodes one masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var h []byte
	switch n := len(payload); {
	case n < 126:
		h = []byte{b0, 0x80 | byte(n)}
	case n < 1<<16:
		h = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		h = []byte{b0, 0x80 | 127}
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	key := []byte{0x12, 0x34, 0x56, 0x78}
	out := append(h, key...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

// readServerFrame reads one unmasked server frame.
func readServerFrame(t *testing.T, c net.Conn) (op byte, payload []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	h := make([]byte, 2)
	if _, err := io.ReadFull(c, h); err != nil {
		t.Fatalf("reading a frame header: %v", err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		ext := make([]byte, 2)
		if _, err := io.ReadFull(c, ext); err != nil {
			t.Fatal(err)
		}
		n = uint64(binary.BigEndian.Uint16(ext))
	case 127:
		ext := make([]byte, 8)
		if _, err := io.ReadFull(c, ext); err != nil {
			t.Fatal(err)
		}
		n = binary.BigEndian.Uint64(ext)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c, payload); err != nil {
		t.Fatalf("reading a %d-byte payload: %v", n, err)
	}
	return h[0] & 0x0f, payload
}

// TestSplitFramesWithPauses: a fragmented message with a ping between its
// fragments arrives a few bytes at a time, with pauses far longer than the
// node takes to read what has come; the node answers the ping and echoes
// the whole message.
func TestSplitFramesWithPauses(t *testing.T) {
	// The raw client answers no ping: PongWait covers the slow send on a
	// loaded machine.
	f := newFixture(t, func(c *Config) { c.PongWait = time.Minute })
	c := f.rawUpgrade(f.mint("split"))
	part1 := bytes.Repeat([]byte("a"), 200)
	part2 := bytes.Repeat([]byte("b"), 100)
	var stream []byte
	stream = append(stream, clientFrame(false, websocket.TextMessage, part1)...)
	stream = append(stream, clientFrame(true, websocket.PingMessage, []byte("are you there"))...)
	stream = append(stream, clientFrame(true, 0, part2)...)
	// 7-byte pieces 40 ms apart: headers, payloads and the ping are all
	// cut, and each piece is read alone.
	for i := 0; i < len(stream); i += 7 {
		end := min(i+7, len(stream))
		if _, err := c.Write(stream[i:end]); err != nil {
			t.Fatalf("write at byte %d: %v", i, err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	gotPong, gotEcho := false, false
	for i := 0; i < 4 && !(gotPong && gotEcho); i++ {
		op, payload := readServerFrame(t, c)
		switch op {
		case websocket.PongMessage:
			if string(payload) != "are you there" {
				t.Fatalf("pong payload %q", payload)
			}
			gotPong = true
		case websocket.TextMessage:
			want := string(part1) + string(part2)
			if string(payload) != want {
				t.Fatalf("echo is %d bytes, want %d", len(payload), len(want))
			}
			gotEcho = true
		case websocket.PingMessage:
			// the node's own keepalive
		default:
			t.Fatalf("unexpected frame op %d", op)
		}
	}
	if !gotPong || !gotEcho {
		t.Fatalf("pong %v, echo %v", gotPong, gotEcho)
	}
}

// TestMessageWithClose: a message and a close frame in one segment. The
// node echoes the message, then completes the close handshake and frees
// the connection.
func TestMessageWithClose(t *testing.T) {
	f := newFixture(t, nil)
	c := f.rawUpgrade(f.mint("closer"))
	probe.Until(t, 10*time.Second, "connected", func() error { return probe.Equal("Conns", f.node.Conns(), 1) })
	var seg []byte
	seg = append(seg, clientFrame(true, websocket.BinaryMessage, []byte("last words"))...)
	seg = append(seg, clientFrame(true, websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))...)
	if _, err := c.Write(seg); err != nil {
		t.Fatal(err)
	}
	var echoed, closed bool
	for i := 0; i < 4 && !closed; i++ {
		op, payload := readServerFrame(t, c)
		switch op {
		case websocket.BinaryMessage:
			if string(payload) != "last words" {
				t.Fatalf("echo %q", payload)
			}
			echoed = true
		case websocket.CloseMessage:
			if !echoed {
				t.Fatal("close answered before the message was echoed")
			}
			if code := binary.BigEndian.Uint16(payload); code != websocket.CloseNormalClosure {
				t.Fatalf("close code %d", code)
			}
			closed = true
		}
	}
	if !echoed || !closed {
		t.Fatalf("echoed %v, close answered %v", echoed, closed)
	}
	probe.Until(t, 10*time.Second, "connection released", func() error { return probe.Equal("Conns", f.node.Conns(), 0) })
}

// TestTwoMessagesOneSegment: the second message is already in the node's
// buffer when the first has been read; it must not wait for more data.
func TestTwoMessagesOneSegment(t *testing.T) {
	f := newFixture(t, nil)
	c := f.rawUpgrade(f.mint("pair"))
	seg := append(clientFrame(true, websocket.TextMessage, []byte("one")), clientFrame(true, websocket.TextMessage, []byte("two"))...)
	if _, err := c.Write(seg); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		op, payload := readServerFrame(t, c)
		if op == websocket.TextMessage {
			got = append(got, string(payload))
		}
	}
	if got[0] != "one" || got[1] != "two" {
		t.Fatalf("echoes %q", got)
	}
}

// readGoroutines counts the node's goroutines that are reading a
// connection.
func readGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "node.(*leg)") || strings.Contains(g, "wsframe.(*Conn)") {
			n++
		}
	}
	return n
}

// TestIdleConnectionsHoldNoGoroutine: connections that have talked and
// then gone quiet, some of them answering the node's pings all along,
// hold no goroutine on the node. Counted from the stacks, a few samples
// apart, so a read in flight at one instant does not count.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	const conns, answering = 120, 40
	f := newFixture(t, func(c *Config) {
		c.MaxConns = conns
		c.PingInterval = 100 * time.Millisecond
		c.PongWait = time.Minute
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; i < conns; i++ {
		ws := f.mustDial(fmt.Sprintf("idle-%d", i))
		if err := ws.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, m, err := ws.ReadMessage(); err != nil || string(m) != "hello" {
			t.Fatalf("echo %d: %q, %v", i, m, err)
		}
		_ = ws.SetReadDeadline(time.Time{})
		if i < answering {
			// Reading makes gorilla answer the node's pings.
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						return
					}
				}
			}()
		}
	}
	probe.Until(t, 10*time.Second, "all connected", func() error { return probe.Equal("Conns", f.node.Conns(), conns) })
	// Several ping rounds, so every answering client has sent pongs.
	time.Sleep(500 * time.Millisecond)
	fewest := conns
	for i := 0; i < 20 && fewest > 2; i++ {
		fewest = min(fewest, readGoroutines())
		time.Sleep(50 * time.Millisecond)
	}
	if fewest > 2 {
		t.Fatalf("%d goroutines read %d idle connections, want none", fewest, conns)
	}
	if f.node.Conns() != conns {
		t.Fatalf("Conns = %d after the pongs, want %d", f.node.Conns(), conns)
	}
	_ = f.node.Close()
}

// chunkConn delivers a TLS client's records to the node either cut into
// small pieces with pauses (split) or several records in one write
// (hold, then flush).
type chunkConn struct {
	net.Conn
	mu    sync.Mutex
	split bool
	hold  bool
	held  []byte
}

func (c *chunkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.hold:
		c.held = append(c.held, p...)
		return len(p), nil
	case c.split:
		for i := 0; i < len(p); i += 5 {
			if _, err := c.Conn.Write(p[i:min(i+5, len(p))]); err != nil {
				return i, err
			}
			time.Sleep(15 * time.Millisecond)
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *chunkConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = false
	_, err := c.Conn.Write(c.held)
	c.held = nil
	return err
}

// tlsFixture serves f's node over TLS with a test CA and returns the
// client's TLS config and the address.
// With viaListener the TCP listener is wrapped with Listener, as
// wsdirect-node does, so the node can tell when a read emptied a socket
// under crypto/tls; without, the node falls back to one-shot
// registrations re-armed by a system call.
func tlsFixture(t *testing.T, f *fixture, viaListener bool) (*tls.Config, string) {
	ca, err := testca.New("idle test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := f.node.HTTPServer(addr)
	if viaListener {
		ln = Listener(ln)
	}
	go func() { _ = srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})) }()
	t.Cleanup(func() {
		_ = f.node.Close()
		_ = srv.Close()
	})
	return &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}, addr
}

// TestTLSRecordsSplitAndJoined: over wss, a TLS record that reaches the
// node in 5-byte pieces is read once whole, and two records that reach it
// in one segment (the second then sits inside crypto/tls, not in the
// socket) are both read.
func TestTLSRecordsSplitAndJoined(t *testing.T) {
	t.Run("Listener", func(t *testing.T) { tlsRecordsSplitAndJoined(t, true) })
	t.Run("one-shot", func(t *testing.T) { tlsRecordsSplitAndJoined(t, false) })
}

func tlsRecordsSplitAndJoined(t *testing.T, viaListener bool) {
	f := newFixture(t, nil)
	tc, addr := tlsFixture(t, f, viaListener)
	var cc *chunkConn
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialTLSContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			nc, err := net.Dial(network, a)
			if err != nil {
				return nil, err
			}
			cc = &chunkConn{Conn: nc}
			c := tls.Client(cc, tc)
			if err := c.HandshakeContext(ctx); err != nil {
				return nil, err
			}
			return c, nil
		},
	}
	ws, _, err := d.Dial("wss://"+addr+wire.WSPath+"?"+wire.TokenQueryParam+"="+f.mint("tls-split"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	echo := func(want ...string) {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		for _, w := range want {
			_, m, err := ws.ReadMessage()
			if err != nil || string(m) != w {
				t.Fatalf("echo: %q, %v; want %q", m, err, w)
			}
		}
	}

	cc.mu.Lock()
	cc.split = true
	cc.mu.Unlock()
	msg := strings.Repeat("split record ", 10)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	echo(msg)
	if cs := f.node.snapshot(10); len(cs) != 1 {
		t.Fatalf("%d connections on the node, want 1", len(cs))
	} else if l := &cs[0].leg; l.edge != viaListener || (l.sock != nil) != viaListener {
		t.Fatalf("edge-triggered %v, socket known %v; want %v", l.edge, l.sock != nil, viaListener)
	}

	cc.mu.Lock()
	cc.split, cc.hold = false, true
	cc.mu.Unlock()
	for _, m := range []string{"first record", "second record", "third record"} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cc.flush(); err != nil {
		t.Fatal(err)
	}
	echo("first record", "second record", "third record")
}

// TestFallbackWithoutPoller: where the poller is unavailable (not Linux),
// each connection keeps a goroutine waiting in its read, and everything
// above still works: echo, pings answered, a message with its close, two
// messages in one segment, the drain.
func TestFallbackWithoutPoller(t *testing.T) {
	saved := sharedPoller
	sharedPoller = func() (*readiness.Poller, error) { return nil, errors.New("test: no poller") }
	t.Cleanup(func() { sharedPoller = saved })
	fallback(t, newFixture(t, nil))
}

// TestWaitingReads: Config.WaitingReads chooses the same fallback on
// purpose.
func TestWaitingReads(t *testing.T) {
	fallback(t, newFixture(t, func(c *Config) { c.WaitingReads = true }))
}

func fallback(t *testing.T, f *fixture) {
	if f.node.poller != nil {
		t.Fatal("the node has a poller")
	}
	ws := f.mustDial("fallback")
	if err := ws.WriteMessage(websocket.TextMessage, []byte("ping?")); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, m, err := ws.ReadMessage(); err != nil || string(m) != "ping?" {
		t.Fatalf("echo %q, %v", m, err)
	}
	if n := readGoroutines(); n < 1 {
		t.Fatalf("%d goroutines read the connection, want the fallback's one", n)
	}
	c := f.rawUpgrade(f.mint("fallback-raw"))
	seg := append(clientFrame(true, websocket.PingMessage, []byte("p")), clientFrame(true, websocket.TextMessage, []byte("one"))...)
	seg = append(seg, clientFrame(true, websocket.TextMessage, []byte("two"))...)
	seg = append(seg, clientFrame(true, websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))...)
	if _, err := c.Write(seg); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 8; i++ {
		op, payload := readServerFrame(t, c)
		if op == websocket.TextMessage || op == websocket.PongMessage {
			got = append(got, string(payload))
		}
		if op == websocket.CloseMessage {
			break
		}
	}
	if strings.Join(got, ",") != "p,one,two" {
		t.Fatalf("frames %q, want the pong, then both echoes, then the close", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.node.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, ws, 10*time.Second); ce.Code != wire.CloseDraining {
		t.Fatalf("close code %d, want %d", ce.Code, wire.CloseDraining)
	}
}

// TestStalledPeerHoldsUpNoOne: a client that keeps sending but stops
// reading makes the node's echo wait in a write, possibly on the poller's
// own goroutine; another connection's message still gets through long
// before that write's deadline (the watchdog hands the loop on).
func TestStalledPeerHoldsUpNoOne(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.WriteWait = time.Minute
		c.PingInterval = time.Minute
		c.PongWait = 2 * time.Minute
	})
	stalled := f.rawUpgrade(f.mint("stalled"))
	other := f.mustDial("other")
	handovers := f.metric("wsdirect_node_read_loop_handovers_total", "")
	// 512-byte frames, so that the node's 4 KiB reads hold whole ones and
	// it echoes them on the poller's goroutine; 20 MB is more than both
	// ends' socket buffers hold, so the echo and then these writes block.
	const frames = 40000
	frame := clientFrame(true, websocket.BinaryMessage, bytes.Repeat([]byte("x"), 512-8))
	var sent atomic.Int64
	go func() {
		for i := 0; i < frames; i++ {
			_ = stalled.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := stalled.Write(frame); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	// Wait, at most 30 s, until the writes have made no progress for 500 ms.
	deadline := time.Now().Add(30 * time.Second)
	for last := int64(-1); ; {
		time.Sleep(500 * time.Millisecond)
		n := sent.Load()
		if n == last && n > 0 {
			break
		}
		if n == frames {
			t.Fatal("20 MB went through a client that reads nothing")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled client's writes still progress after 30 s (%d frames)", n)
		}
		last = n
	}
	start := time.Now()
	_ = other.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := other.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := other.ReadMessage(); err != nil || string(msg) != "still here" {
		t.Fatalf("echo to the other connection: %q, %v (after %s)", msg, err, time.Since(start))
	}
	t.Logf("other connection's echo after %s; %d frames sent before the stall; loop handovers %v", time.Since(start), sent.Load(),
		f.metric("wsdirect_node_read_loop_handovers_total", "")-handovers)
	stalled.Close()
}
