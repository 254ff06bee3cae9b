// Package wsframe sits between gorilla/websocket and a connection so that
// the connection can be read only when it has data, with no goroutine
// parked in a read while it is silent.
//
// Reading a connection on demand (see internal/readiness) has two hazards
// that this package removes:
//
//   - Buffered data. gorilla reads through a bufio.Reader, which may hold
//     the start of the next frame once a message is read; the socket then
//     looks idle while a frame is stuck in memory. Conn hands gorilla at
//     most the rest of the current frame on each Read, so gorilla's buffer
//     is empty whenever a message has been read to its end, and whatever
//     was read ahead stays in Conn, where Buffered sees it.
//   - Control frames. gorilla handles a ping or pong inside NextReader and
//     then waits there for the next data message: a client answering the
//     server's pings would park a goroutine until it next spoke. Conn takes
//     well-formed pings and pongs out of the stream and hands them to a
//     Handler instead, so gorilla is called only when a data or close frame
//     is there to read. Anything malformed goes to gorilla untouched, which
//     fails the connection as it always did.
//
// Data frames, close frames, the read limit and every protocol check stay
// with gorilla.
package wsframe

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/readiness"
)

// bufSize is the read-ahead buffer, borrowed from a pool only while the
// connection holds unread bytes: an idle connection holds none.
const bufSize = 4096

var pool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// maxControl is the largest control frame payload (RFC 6455 5.5).
const maxControl = 125

// WebSocket opcodes (RFC 6455 5.2).
const (
	opPing = 0x9
	opPong = 0xA
)

// Handler receives the control frames Conn takes out of the stream. It is
// called on the reading goroutine; the payload is valid only during the
// call. An error fails the read that met the frame, as an error from
// gorilla's ping and pong handlers does.
type Handler interface {
	Ping(payload []byte) error
	Pong(payload []byte) error
}

// Conn wraps the connection gorilla reads from: the socket, or the
// *tls.Conn over it. Writes, deadlines and Close go straight through. Only
// one goroutine may read at a time (gorilla's own rule).
type Conn struct {
	net.Conn
	h Handler
	// server is true when the peer is a client, whose frames are masked.
	server bool
	// handshake is true on a client connection until Upgraded: gorilla
	// parses the HTTP response through its bufio.Reader, so Read hands out
	// one byte at a time and nothing after the response is read ahead.
	handshake bool

	buf  *[]byte // nil while nothing is buffered
	r, w int
	// left is how much of the current frame gorilla has yet to read; 0 at
	// a frame boundary.
	left int64
	// short is true when the last read from the connection returned less
	// than the room it was given: the socket had nothing more then.
	short bool
}

// Server wraps c, the server side of an upgraded connection.
func Server(c net.Conn, h Handler) *Conn { return &Conn{Conn: c, h: h, server: true} }

// Client wraps c, a client connection whose WebSocket handshake has not
// been read yet; call Upgraded once the dial has returned.
func Client(c net.Conn, h Handler) *Conn { return &Conn{Conn: c, h: h, handshake: true} }

// Upgraded ends the handshake phase of a Client connection.
func (c *Conn) Upgraded() { c.handshake = false }

// SetHandler replaces the control frame handler. Call it before reading.
func (c *Conn) SetHandler(h Handler) { c.h = h }

// Buffered returns how many bytes Conn holds that gorilla has not read.
func (c *Conn) Buffered() int { return c.w - c.r }

// Whole reports whether the rest of the current frame is buffered, so that
// gorilla can read it without waiting for the connection.
func (c *Conn) Whole() bool { return int64(c.Buffered()) >= c.left }

// Drained reports whether the last read from the connection emptied it: it
// returned less than it had room for. Only a socket read directly (not
// through crypto/tls) says so reliably.
func (c *Conn) Drained() bool { return c.short }

// FillNow reads once from the socket without waiting:
// readiness.ErrWouldBlock when it has nothing. The connection must be the
// socket itself (a syscall.Conn), not crypto/tls over it.
func (c *Conn) FillNow() error {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return errors.New("wsframe: FillNow needs a socket")
	}
	b := c.room()
	n, err := readiness.ReadNow(sc, b)
	if err != nil {
		c.releaseIfEmpty()
		return err
	}
	c.w += n
	c.short = n < len(b)
	return nil
}

// Fill reads once from the connection into the buffer, waiting (up to the
// read deadline) for data. Call it when the connection is known to be
// readable, or when something below Conn (crypto/tls) still holds data.
func (c *Conn) Fill() error { return c.fill() }

// Next prepares the next frame without handing it to gorilla: it answers
// and drops any pings and pongs at the head of the buffer, reading more
// only to complete a frame that has begun. It reports true when a frame
// gorilla must read (data, close, or malformed) is next, so NextReader
// will not wait for one; false when the buffer is empty.
func (c *Conn) Next() (bool, error) {
	if c.left > 0 {
		return true, nil
	}
	for {
		if c.Buffered() == 0 {
			c.release()
			return false, nil
		}
		ready, err := c.frame()
		if err != nil || ready {
			return ready, err
		}
	}
}

// Read implements io.Reader for gorilla: it returns bytes of the current
// frame only, taking control frames out on the way.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.handshake {
		if c.Buffered() == 0 {
			if err := c.fill(); err != nil {
				return 0, err
			}
		}
		b := *c.buf
		p[0] = b[c.r]
		c.r++
		c.releaseIfEmpty()
		return 1, nil
	}
	for c.left == 0 {
		if c.Buffered() == 0 {
			if err := c.fill(); err != nil {
				return 0, err
			}
		}
		if _, err := c.frame(); err != nil {
			return 0, err
		}
	}
	if c.Buffered() == 0 {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := c.Buffered()
	if int64(n) > c.left {
		n = int(c.left)
	}
	n = copy(p, (*c.buf)[c.r:c.r+n])
	c.r += n
	c.left -= int64(n)
	c.releaseIfEmpty()
	return n, nil
}

// frame looks at the frame starting at the buffer's head, reading more if
// its header (or, for a control frame, its payload) is incomplete. A ping
// or pong is handled and consumed, and frame returns false; any other
// frame becomes the current one (left is set) and frame returns true.
func (c *Conn) frame() (bool, error) {
	if err := c.ensure(2); err != nil {
		return false, err
	}
	b := (*c.buf)[c.r:c.w]
	b0, b1 := b[0], b[1]
	masked := b1&0x80 != 0
	hlen := 2
	var plen uint64
	switch l := b1 & 0x7f; l {
	case 126:
		hlen += 2
	case 127:
		hlen += 8
	default:
		plen = uint64(l)
	}
	if masked {
		hlen += 4
	}
	if err := c.ensure(hlen); err != nil {
		return false, err
	}
	b = (*c.buf)[c.r:c.w]
	switch b1 & 0x7f {
	case 126:
		plen = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		plen = binary.BigEndian.Uint64(b[2:])
	}
	op := b0 & 0x0f
	control := (op == opPing || op == opPong) &&
		b0&0x80 != 0 && // FIN: control frames are never fragmented
		b0&0x70 == 0 && // no RSV bits: no extension is negotiated
		plen <= maxControl &&
		masked == c.server // clients mask, servers do not
	if !control {
		if plen > 1<<62 {
			// Malformed; gorilla refuses it after reading the header.
			plen = 0
		}
		c.left = int64(hlen) + int64(plen)
		return true, nil
	}
	total := hlen + int(plen)
	if err := c.ensure(total); err != nil {
		return false, err
	}
	b = (*c.buf)[c.r : c.r+total]
	var payload [maxControl]byte
	pl := payload[:plen]
	copy(pl, b[hlen:])
	if masked {
		key := b[hlen-4 : hlen]
		for i := range pl {
			pl[i] ^= key[i&3]
		}
	}
	c.r += total
	c.releaseIfEmpty()
	if op == opPing {
		return false, c.h.Ping(pl)
	}
	return false, c.h.Pong(pl)
}

// ensure reads until n bytes are buffered. n is at most a control frame
// with its header, far below bufSize.
func (c *Conn) ensure(n int) error {
	for c.Buffered() < n {
		if err := c.fill(); err != nil {
			return err
		}
	}
	return nil
}

// errNoProgress guards against a reader that keeps returning nothing.
var errNoProgress = errors.New("wsframe: connection returned no data")

// room returns the buffer's free space, borrowing the buffer if needed and
// moving what is unread to its start when it is full.
func (c *Conn) room() []byte {
	if c.buf == nil {
		c.buf = pool.Get().(*[]byte)
		c.r, c.w = 0, 0
	}
	b := *c.buf
	if c.r == c.w {
		c.r, c.w = 0, 0
	} else if c.w == len(b) {
		c.w = copy(b, b[c.r:c.w])
		c.r = 0
	}
	return b[c.w:]
}

func (c *Conn) fill() error {
	for i := 0; i < 100; i++ {
		b := c.room()
		n, err := c.Conn.Read(b)
		c.w += n
		if n > 0 {
			c.short = n < len(b)
			return nil
		}
		if err != nil {
			c.releaseIfEmpty()
			return err
		}
	}
	return errNoProgress
}

func (c *Conn) releaseIfEmpty() {
	if c.r == c.w {
		c.release()
	}
}

func (c *Conn) release() {
	if c.buf != nil {
		pool.Put(c.buf)
		c.buf = nil
		c.r, c.w = 0, 0
	}
}
