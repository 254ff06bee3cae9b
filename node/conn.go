package node

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/wsframe"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// connShards splits the connection set so registration during a connect
// burst does not serialise on one lock, and so the pinger can ping one
// shard at a time, spread over the interval.
const connShards = 32

type connShard struct {
	mu sync.Mutex
	m  map[*conn]struct{}
	// pinging is set while a goroutine pings this shard, so that a shard
	// whose peers are slow to take a write is not pinged twice at once.
	pinging atomic.Bool
}

// list returns the shard's connections, copied under its lock, so that the
// caller can write to them outside it without blocking connects.
func (s *connShard) list() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.m))
	for c := range s.m {
		out = append(out, c)
	}
	return out
}

// conn is one client connection. It is deliberately small: an idle
// connection is this struct, gorilla's Conn with its small read buffer,
// wsframe's Conn (which borrows a buffer only while data is waiting), the
// poller's watch, and the socket. No goroutine waits on it.
type conn struct {
	n     *Node
	leg   leg       // the client's WebSocket (leg.ws) and how it is read
	up    *upstream // the relay's other side; nil for the echo
	user  string
	shard uint32
	// closing is set once a close frame has been (or is being) sent, so a
	// connection is closed only once and the drain skips it.
	closing atomic.Bool
	// lastSeen is when the peer last sent a message or a pong (Unix
	// nanoseconds); the pinger drops it once PongWait has passed.
	lastSeen atomic.Int64
	// movedIn is when the connection arrived with a rebalanced token (Unix
	// nanoseconds), 0 otherwise; the rebalance leaves it alone for
	// RebalanceConfig.Exempt.
	movedIn int64
	// writeBy is the write deadline data writes to ws use (lazyDeadline);
	// only ws's one data writer at a time touches it.
	writeBy int64
}

// newConn configures ws (read through fc) and registers it; the
// connection's slot is already reserved. up is the relay's upstream, or
// nil. Reading starts with start.
func (n *Node) newConn(ws *websocket.Conn, fc *wsframe.Conn, up *websocket.Conn, user string, movedIn int64) *conn {
	c := &conn{n: n, user: user, shard: n.nextIdx.Add(1) % connShards, movedIn: movedIn}
	c.lastSeen.Store(time.Now().UnixNano())
	c.leg = leg{ws: ws, fc: fc, own: c, wait: n.conf.PongWait}
	fc.SetHandler(c)
	ws.SetReadLimit(n.conf.ReadLimit)
	if up != nil {
		ufc := up.NetConn().(*wsframe.Conn)
		c.up = &upstream{c: c, done: make(chan struct{})}
		c.up.leg = leg{ws: up, fc: ufc, own: c.up}
		ufc.SetHandler(c.up)
		n.watchLeg(&c.up.leg)
	}
	n.watchLeg(&c.leg)
	s := &n.shards[c.shard]
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
	n.active.Add(1)
	n.changes.Add(1)
	n.publish()
	return c
}

// start begins reading the client (and the upstream, for a relay).
func (c *conn) start() {
	if c.up != nil {
		c.n.startLeg(&c.up.leg)
	}
	c.n.startLeg(&c.leg)
}

// Ping answers a client's ping (wsframe.Handler).
func (c *conn) Ping(payload []byte) error { return answerPing(c.leg.ws, payload, c.n.conf.WriteWait) }

// Pong proves the peer is alive (wsframe.Handler).
func (c *conn) Pong([]byte) error {
	now := time.Now()
	c.lastSeen.Store(now.UnixNano())
	// A read that has begun is extended, as gorilla's deadline was.
	c.leg.extend(now)
	return nil
}

// message is one client message: echoed, or passed to the upstream.
func (c *conn) message(mt int, r io.Reader) error {
	c.lastSeen.Store(time.Now().UnixNano())
	if c.up != nil {
		err := c.copyMessage(c.up.leg.ws, &c.up.writeBy, mt, r)
		// A fragmented client message can cross the read limit mid-copy;
		// gorilla has already sent 1009 then. Otherwise the upstream broke
		// mid-write, and its reader will see it too.
		if err != nil && !errors.Is(err, websocket.ErrReadLimit) {
			c.closeWith(wire.CloseUpstreamUnavailable, closeText(wire.CloseUpstreamUnavailable))
		}
		return err
	}
	// The echo is the connection's only data writer, so no writer
	// goroutine is needed; pings and closes go through WriteControl, which
	// gorilla allows concurrently with it.
	err := c.copyMessage(c.leg.ws, &c.writeBy, mt, r)
	if errors.Is(err, websocket.ErrCloseSent) {
		return nil // closing: keep reading until the peer's close arrives
	}
	// A fragmented message can cross the read limit mid-copy.
	return err
}

// end is the client read side's end: log it, close the upstream to match,
// and release the connection.
func (c *conn) end(err error) {
	c.logReadEnd(err)
	if c.up != nil {
		c.endRelay(err)
	}
	c.linger(err)
	c.finish()
}

// shutdown drops the client's socket; the read side ends the connection.
func (c *conn) shutdown() { c.leg.shutdown() }

// finish unregisters c and frees its slot. Called once, by end.
func (c *conn) finish() {
	c.shutdown()
	n := c.n
	s := &n.shards[c.shard]
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
	n.active.Add(-1)
	n.changes.Add(1)
	n.users.release(c.user)
	n.release()
	n.publish()
}

// copyMessage streams one message from r to dst as a message of type mt;
// writeBy is dst's lazy write deadline. gorilla's message writer
// implements io.ReaderFrom, so this copies through the pooled write
// buffer without another allocation. The write deadline follows the
// reading: a message that arrives slowly, in pieces, is not cut because
// its first byte came more than WriteWait before its last.
func (c *conn) copyMessage(dst *websocket.Conn, writeBy *int64, mt int, r io.Reader) error {
	wait := c.n.conf.WriteWait
	by, _ := lazyDeadline(writeBy, time.Now(), wait)
	_ = dst.SetWriteDeadline(by)
	w, err := dst.NextWriter(mt)
	if err != nil {
		return err
	}
	src := deadlineReaders.Get().(*deadlineReader)
	*src = deadlineReader{r: r, dst: dst, wait: wait, by: writeBy}
	_, err = io.Copy(w, src)
	*src = deadlineReader{}
	deadlineReaders.Put(src)
	if err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// deadlineReaders keeps copyMessage from allocating one per message: on a
// node's small heap, per-message garbage is what sets how often the
// collector runs under load.
var deadlineReaders = sync.Pool{New: func() any { return new(deadlineReader) }}

// deadlineReader moves dst's write deadline on as the message it copies
// arrives (lazyDeadline: only when it comes within WriteWait).
type deadlineReader struct {
	r    io.Reader
	dst  *websocket.Conn
	wait time.Duration
	by   *int64
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if by, moved := lazyDeadline(d.by, time.Now(), d.wait); moved {
		_ = d.dst.SetWriteDeadline(by)
	}
	return n, err
}

// lazyDeadline returns a deadline for an operation that may take d from
// now: *at while that is still at least d away, else a new one 1.5 d away,
// stored in *at (moved reports it). A socket deadline set to a new value
// costs a timer update, the same value again does not (gorilla sets the
// write deadline on every frame), so a busy connection updates its timers
// every d/2 instead of on every message; an operation is bounded by
// between d and 1.5 d, never less than d.
func lazyDeadline(at *int64, now time.Time, d time.Duration) (by time.Time, moved bool) {
	n := now.UnixNano()
	if *at-n >= int64(d) {
		return time.Unix(0, *at), false
	}
	*at = n + int64(d+d/2)
	return time.Unix(0, *at), true
}

// closeWith sends a close frame with code and text, once, and drops the
// connection if the peer does not answer within CloseGrace. Safe from any
// goroutine.
func (c *conn) closeWith(code int, text string) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	msg := websocket.FormatCloseMessage(code, text)
	if err := c.leg.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.n.conf.WriteWait)); err != nil {
		c.shutdown()
		return
	}
	// The read side ends when the peer's close frame arrives; this bounds
	// the wait for one that never does. Closing twice is harmless.
	time.AfterFunc(c.n.conf.CloseGrace, c.shutdown)
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
	nc := c.leg.fc.Conn // below wsframe: raw bytes, no frame parsing
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
