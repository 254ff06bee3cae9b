package node

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/readiness"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/tlsbuf"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/wsframe"
)

// A node reads a connection only while it has data: no goroutine waits on
// a silent one (docs/design.md, "Idle connections"). The shared poller
// (internal/readiness) runs a leg's read when its socket becomes readable,
// on the poller's own goroutine when it is the only one (no thread
// hand-off) or on a worker; the read takes every message that is there,
// then rearms the watch and returns. On the poller's goroutine anything
// that would wait (the rest of a frame, the end of a connection) moves to
// a goroutine of its own. Where the poller is unavailable (not
// Linux), or crypto/tls's buffers cannot be seen (tlsbuf.Idle), a leg
// falls back to a goroutine waiting in the read, as before.

// sharedPoller is the poller nodes use; a test replaces it to exercise the
// fallback.
var sharedPoller = readiness.Default

// legOwner is what a leg reports to: the client connection, or a relay's
// upstream side.
type legOwner interface {
	// message handles one message; an error ends the leg. Whatever of r it
	// leaves unread is discarded.
	message(mt int, r io.Reader) error
	// end is called once, when reading stops, on the reading goroutine or
	// on one of its own.
	end(err error)
}

// leg is one WebSocket the node reads.
type leg struct {
	ws    *websocket.Conn
	fc    *wsframe.Conn
	own   legOwner
	watch *readiness.Watch // nil: a goroutine waits in the read instead
	// edge: the watch is edge-triggered (readiness.AddEdge), and the leg
	// reads the socket without waiting until it is empty.
	edge bool
	// sock is the socket under crypto/tls, when it came through Listener:
	// it tells when a read emptied it. nil for ws:// (wsframe tells).
	sock *socket
	// wait bounds a read once a frame has begun (0: no bound); the client
	// side uses PongWait, as gorilla's read deadline did. readBy is the
	// read deadline in force (lazyDeadline).
	wait   time.Duration
	readBy int64
}

// extend makes sure a read starting now has at least wait before its
// deadline; only the leg's reader calls it.
func (l *leg) extend(now time.Time) {
	if l.wait <= 0 {
		return
	}
	if by, moved := lazyDeadline(&l.readBy, now, l.wait); moved {
		_ = l.fc.SetReadDeadline(by)
	}
}

// watchLeg registers l with the poller, disarmed, when it can be read on
// demand. Called before the connection is visible to other goroutines.
func (n *Node) watchLeg(l *leg) {
	if n.poller == nil {
		return
	}
	if _, known := tlsbuf.Known(l.fc.Conn); !known {
		return
	}
	// A socket that tells when a read emptied it can stay registered and
	// be rearmed without a system call: one read directly, or one under
	// crypto/tls that came through Listener.
	add := n.poller.AddEdge
	l.edge = true
	if tc, ok := l.fc.Conn.(*tls.Conn); ok {
		if l.sock, ok = tc.NetConn().(*socket); !ok {
			add, l.edge = n.poller.Add, false
		}
	}
	w, err := add(socketOf(l.fc.Conn), l.onReadable)
	if err != nil {
		n.log.Debug("reading with a waiting goroutine", "err", err)
		l.edge, l.sock = false, nil
		return
	}
	l.watch = w
}

// startLeg starts reading l: arms its watch, or starts its waiting
// goroutine.
func (n *Node) startLeg(l *leg) {
	if l.watch == nil {
		go l.waitLoop()
		return
	}
	// Nothing reads yet: crypto/tls may have read records past the HTTP
	// request along with it, and the socket will not become readable for
	// them, so read at once then. A watch stopped meanwhile is read at
	// once too, to meet the closed socket and end.
	if idle, _ := tlsbuf.Idle(l.fc.Conn); !idle || l.watch.Rearm() != nil {
		go l.onReadable(false)
	}
}

// onReadable is the watch's callback. inline is true on the poller's own
// goroutine: then a read that would wait for more data moves to a
// goroutine of the leg's own (see read).
func (l *leg) onReadable(inline bool) {
	err := l.read(inline)
	switch {
	case err == nil:
	case inline:
		// Ending can wait: a relay gives its upstream CloseGrace to
		// answer the close.
		go l.own.end(err)
	default:
		l.own.end(err)
	}
}

// waitLoop is the fallback: a goroutine that lives as long as the leg.
func (l *leg) waitLoop() {
	for {
		if err := l.read(false); err != nil {
			l.own.end(err)
			return
		}
	}
}

// read reads from the socket once, then every message that is complete or
// has begun (messages).
func (l *leg) read(inline bool) error {
	l.extend(time.Now())
	if !l.edge {
		if l.watch != nil {
			// The socket is readable, so the read returns at once and
			// messages' Idle takes the array back; a waiting goroutine
			// would hold it for as long as the connection is silent.
			tlsbuf.Lend(l.fc.Conn)
		}
		if err := l.fc.Fill(); err != nil {
			return err
		}
	}
	// An edge-triggered leg reads without waiting (messages): the event
	// may be for data an earlier read already took.
	return l.messages(inline)
}

// resume goes on with a frame that has begun, off the poller's goroutine.
func (l *leg) resume() {
	if err := l.messages(false); err != nil {
		l.own.end(err)
	}
}

// messages reads every message that is complete or has begun. With a watch
// it rearms it and returns nil once nothing is left in any buffer; without
// one it returns nil to be called again. inline: see onReadable.
func (l *leg) messages(inline bool) error {
	fc := l.fc
	// mustRead: the socket may hold data no read has seen (an event, or
	// ErrAgain), and no further event will report it.
	mustRead := l.edge
	for {
		ready, err := fc.Next()
		if err != nil {
			return err
		}
		if !ready && l.edge {
			// Nothing left in wsframe's buffer (gorilla's is empty between
			// messages). Read on without waiting while crypto/tls holds
			// anything (decrypted data, records read ahead, part of a
			// record) or the socket may hold more: no event would say so.
			idle, _ := tlsbuf.Idle(fc.Conn)
			if !idle || mustRead || !l.drained() {
				mustRead = false
				switch err := l.fillNow(); {
				case err == nil:
					continue
				case !errors.Is(err, readiness.ErrWouldBlock):
					return err
				}
				// The socket is empty; the rest of a record, if crypto/tls
				// holds part of one, raises an event when it comes.
			}
			err := l.watch.Rearm()
			if errors.Is(err, readiness.ErrAgain) {
				mustRead = true
				continue
			}
			return err
		}
		if !ready {
			// Nothing left in wsframe's buffer (gorilla's is empty between
			// messages); crypto/tls may still hold decrypted data or
			// records it read ahead.
			if idle, _ := tlsbuf.Idle(fc.Conn); !idle {
				if inline {
					// Part of a record may be all there is: reading it
					// would wait for the rest.
					go l.onReadable(false)
					return nil
				}
				if err := fc.Fill(); err != nil {
					return err
				}
				continue
			}
			if l.watch == nil {
				return nil
			}
			return l.watch.Rearm()
		}
		if inline && !fc.Whole() {
			// The rest of the frame is still on its way; wait for it
			// elsewhere, not on the goroutine every socket's events
			// come through.
			go l.resume()
			return nil
		}
		mt, r, err := l.ws.NextReader()
		if err != nil {
			return err
		}
		if err := l.own.message(mt, r); err != nil {
			return err
		}
		// The message must be read to its end before going idle, or part
		// of it would sit in gorilla's buffer.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		// A long stream of messages keeps this read going.
		l.extend(time.Now())
	}
}

// shutdown closes the leg's socket; its read side notices and ends it.
// Safe from any goroutine, any number of times.
func (l *leg) shutdown() {
	if l.watch != nil {
		l.watch.Stop() // before the close: see readiness.Watch.Stop
	}
	_ = l.ws.Close()
}

// answerPing is gorilla's default ping handler, for wsframe.Handler: a
// pong, where a closing connection or a timed-out write is not an error.
func answerPing(ws *websocket.Conn, payload []byte, wait time.Duration) error {
	err := ws.WriteControl(websocket.PongMessage, payload, time.Now().Add(wait))
	var ne net.Error
	if errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
		return nil
	}
	return err
}

// hijacker puts wsframe between gorilla and the connection it hijacks.
type hijacker struct {
	http.ResponseWriter
	fc *wsframe.Conn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.fc = wsframe.Server(nc, nil)
	return h.fc, brw, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// socketOf returns the socket under c (below crypto/tls).
func socketOf(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// fillNow reads once without waiting (readiness.ErrWouldBlock when there is
// nothing), through crypto/tls when the leg has one: crypto/tls passes the
// temporary error on and keeps any part of a record it read.
func (l *leg) fillNow() error {
	if l.sock == nil {
		return l.fc.FillNow()
	}
	tlsbuf.Lend(l.fc.Conn)
	l.sock.nowait = true
	err := l.fc.Fill()
	l.sock.nowait = false
	return err
}

// drained reports whether the last read from the socket emptied it.
func (l *leg) drained() bool {
	if l.sock != nil {
		return l.sock.short
	}
	return l.fc.Drained()
}
