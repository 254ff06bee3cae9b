package node

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/tlsbuf"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// connShards splits the connection set so registration during a connect
// burst does not serialise on one lock, and so the pinger can walk shards
// in parallel.
const connShards = 32

type connShard struct {
	mu sync.Mutex
	m  map[*conn]struct{}
}

// conn is one client connection. It is deliberately small: an idle
// connection is this struct, gorilla's Conn with its small read buffer, the
// socket, and one goroutine parked in a read.
type conn struct {
	n     *Node
	ws    *websocket.Conn
	user  string
	shard uint32
	// closing is set once a close frame has been (or is being) sent, so a
	// connection is closed only once and the drain skips it.
	closing atomic.Bool
	// movedIn is when the connection arrived with a rebalanced token (Unix
	// nanoseconds), 0 otherwise; the rebalance leaves it alone for
	// RebalanceConfig.Exempt. The struct stays in the same 48-byte size
	// class with it.
	movedIn int64
}

// newConn configures ws and registers it; the connection's slot is already
// reserved.
func (n *Node) newConn(ws *websocket.Conn, user string, movedIn int64) *conn {
	// Over TLS, drop the buffers the handshake grew (about 3.5 KB per
	// connection). Nothing reads the socket yet: the read loop starts
	// after this.
	tlsbuf.Release(ws.NetConn())
	c := &conn{n: n, ws: ws, user: user, shard: n.nextIdx.Add(1) % connShards, movedIn: movedIn}
	ws.SetReadLimit(n.conf.ReadLimit)
	_ = ws.SetReadDeadline(time.Now().Add(n.conf.PongWait))
	ws.SetPongHandler(c.onPong)
	s := &n.shards[c.shard]
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
	n.active.Add(1)
	n.publish()
	return c
}

// onPong proves the peer is alive: extend the read deadline.
func (c *conn) onPong(string) error {
	return c.ws.SetReadDeadline(time.Now().Add(c.n.conf.PongWait))
}

// finish unregisters c and frees its slot. Called once, by the read loop.
func (c *conn) finish() {
	_ = c.ws.Close()
	n := c.n
	s := &n.shards[c.shard]
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
	n.active.Add(-1)
	n.users.release(c.user)
	n.release()
	n.publish()
}

// serveEcho is the built-in application: every message comes back with the
// same type. It is the connection's only data writer, so no writer
// goroutine is needed; pings and closes go through WriteControl, which
// gorilla allows concurrently with it.
func (c *conn) serveEcho() {
	defer c.finish()
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil {
			c.logReadEnd(err)
			c.linger(err)
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(c.n.conf.PongWait))
		if err := c.copyMessage(c.ws, mt, r); err != nil {
			if errors.Is(err, websocket.ErrCloseSent) {
				continue // closing: keep reading until the peer's close arrives
			}
			// A fragmented message can cross the read limit mid-copy.
			c.logReadEnd(err)
			c.linger(err)
			return
		}
	}
}

// copyMessage streams one message from r to dst as a message of type mt.
// gorilla's message writer implements io.ReaderFrom, so this copies through
// the pooled write buffer without another allocation.
func (c *conn) copyMessage(dst *websocket.Conn, mt int, r io.Reader) error {
	_ = dst.SetWriteDeadline(time.Now().Add(c.n.conf.WriteWait))
	w, err := dst.NextWriter(mt)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// closeWith sends a close frame with code and text, once, and drops the
// connection if the peer does not answer within CloseGrace. Safe from any
// goroutine.
func (c *conn) closeWith(code int, text string) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	msg := websocket.FormatCloseMessage(code, text)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.n.conf.WriteWait)); err != nil {
		_ = c.ws.Close()
		return
	}
	// The read loop ends when the peer's close frame arrives; this bounds
	// the wait for one that never does. Closing twice is harmless.
	time.AfterFunc(c.n.conf.CloseGrace, func() { _ = c.ws.Close() })
}

// linger handles a message over the read limit: gorilla has sent close
// 1009, but the peer is probably still sending the rest of the message.
// Closing the socket with unread data makes the kernel answer with a reset,
// which can destroy the close frame before the peer reads it. So discard
// what the peer sends until it closes, for at most CloseGrace.
func (c *conn) linger(err error) {
	if !errors.Is(err, websocket.ErrReadLimit) {
		return
	}
	c.closing.Store(true)
	nc := c.ws.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(c.n.conf.CloseGrace))
	_, _ = io.Copy(io.Discard, nc)
}

func (c *conn) logReadEnd(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		c.n.log.Debug("disconnected", "user", c.user, "code", ce.Code)
	case errors.Is(err, websocket.ErrReadLimit):
		c.n.log.Debug("disconnected: message too big", "user", c.user)
	default:
		c.n.log.Debug("disconnected", "user", c.user, "err", err)
	}
}

// pinger is the one goroutine that keeps every connection alive. Each tick
// it walks the shards in parallel (so one slow peer delays only its shard,
// by at most WriteWait) and pings every connection.
func (n *Node) pinger() {
	t := time.NewTicker(n.conf.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for i := range n.shards {
			wg.Add(1)
			go func(s *connShard) {
				defer wg.Done()
				n.pingShard(s)
			}(&n.shards[i])
		}
		wg.Wait()
	}
}

func (n *Node) pingShard(s *connShard) {
	// Snapshot, then write outside the lock so connects are not blocked.
	s.mu.Lock()
	batch := make([]*conn, 0, len(s.m))
	for c := range s.m {
		batch = append(batch, c)
	}
	s.mu.Unlock()
	for _, c := range batch {
		if c.closing.Load() {
			continue
		}
		if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(n.conf.WriteWait)); err != nil {
			// A peer we cannot even write a ping to is gone; the read loop
			// notices the closed socket and cleans up.
			_ = c.ws.Close()
		}
	}
}

// snapshot returns up to max connections that are not closing yet.
func (n *Node) snapshot(max int) []*conn {
	var out []*conn
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.Lock()
		for c := range s.m {
			if len(out) >= max {
				break
			}
			if !c.closing.Load() {
				out = append(out, c)
			}
		}
		s.mu.Unlock()
		if len(out) >= max {
			break
		}
	}
	return out
}

func closeText(code int) string {
	switch code {
	case wire.CloseDraining:
		return "draining; reconnect elsewhere"
	case wire.CloseShutdown:
		return "node shutting down; reconnect elsewhere"
	case wire.CloseUpstreamUnavailable:
		return "upstream unavailable"
	case wire.CloseRebalance:
		return "rebalance; reconnect through auth"
	}
	return ""
}
