// Package tlsbuf sees what a crypto/tls connection has read but not yet
// returned (Idle), and gives back the buffers it keeps from its handshake
// and its records (Release, Idle).
//
// A tls.Conn reads the client's hello into two buffers, the raw record
// buffer and the handshake message buffer, and keeps both at their largest
// size for the connection's life. Hellos are large now (a post-quantum key
// share makes Chromium's and Go's about 1.8 KB), so an idle connection
// holds about 3.5 KB it will never use again: on a node holding tens of
// thousands of idle wss:// connections that is as much as everything else
// TLS keeps (see docs/benchmarks.md). crypto/tls has no API to see or drop
// them, so the fields are found once by name through reflect, their types
// checked; if a Go release renames or retypes them, Release and Idle do
// nothing and say so, and the tests fail.
package tlsbuf

import (
	"bytes"
	"crypto/tls"
	"net"
	"reflect"
	"unsafe"
)

var (
	bufferType = reflect.TypeOf(bytes.Buffer{})
	readerType = reflect.TypeOf(bytes.Reader{})
)

// Release drops the handshake buffers of c when c is a *tls.Conn whose
// handshake is complete and which holds no unread data; it reports whether
// it released anything. The caller must be the only goroutine using c's
// read side (e.g. right after a WebSocket upgrade, before the connection's
// read loop starts): the buffers belong to the reader. Writers are not
// affected.
func Release(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	if !ok || !tc.ConnectionState().HandshakeComplete {
		return false
	}
	hand, raw, input, ok := buffers(tc)
	if !ok {
		return false
	}
	released := false
	if hand.Len() == 0 && hand.Cap() > 0 {
		*hand = bytes.Buffer{}
		released = true
	}
	// Decrypted data not read yet lives in rawInput's array (input reads
	// from it): both must be empty. input keeps a slice of that array even
	// when drained, so it is reset too.
	if raw.Len() == 0 && input.Len() == 0 && raw.Cap() > 0 {
		input.Reset(nil)
		*raw = bytes.Buffer{}
		released = true
	}
	return released
}

// offsets of the *tls.Conn fields Release and Idle use, found once; ok is false when
// crypto/tls has renamed or retyped one of them.
var offsets = func() (o struct {
	hand, raw, input uintptr
	ok               bool
}) {
	t := reflect.TypeOf(tls.Conn{})
	get := func(name string, want reflect.Type) (uintptr, bool) {
		f, found := t.FieldByName(name)
		if !found || f.Type != want || len(f.Index) != 1 {
			return 0, false
		}
		return f.Offset, true
	}
	var ok1, ok2, ok3 bool
	o.hand, ok1 = get("hand", bufferType)
	o.raw, ok2 = get("rawInput", bufferType)
	o.input, ok3 = get("input", readerType)
	o.ok = ok1 && ok2 && ok3
	return o
}()

// Idle reports whether c holds nothing it has read from the network but
// not yet returned from Read, so that waiting for the socket to become
// readable will not strand data; when it holds nothing, the read buffers
// are dropped, as Release does. known is false when c is a *tls.Conn whose
// internals this package cannot see (a renamed field): the caller must
// then keep a reader waiting on c. A connection that is not a *tls.Conn
// buffers nothing here. The caller must be c's only reader.
func Idle(c net.Conn) (idle, known bool) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return true, true
	}
	hand, raw, input, ok := buffers(tc)
	if !ok {
		return false, false
	}
	if raw.Len() > 0 || input.Len() > 0 || hand.Len() > 0 {
		return false, true
	}
	if raw.Cap() > 0 {
		input.Reset(nil)
		*raw = bytes.Buffer{}
	}
	if hand.Cap() > 0 {
		*hand = bytes.Buffer{}
	}
	return true, true
}

// Known reports whether Idle can see c's buffers: true for a connection
// that is not a *tls.Conn. tc is c as a *tls.Conn, or nil.
func Known(c net.Conn) (tc *tls.Conn, known bool) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, true
	}
	return tc, offsets.ok
}

// buffers returns tc's handshake buffer, raw record buffer and unread
// decrypted data; ok is false when their fields are not as expected.
func buffers(tc *tls.Conn) (hand, raw *bytes.Buffer, input *bytes.Reader, ok bool) {
	if !offsets.ok {
		return nil, nil, nil, false
	}
	base := unsafe.Pointer(tc)
	return (*bytes.Buffer)(unsafe.Add(base, offsets.hand)),
		(*bytes.Buffer)(unsafe.Add(base, offsets.raw)),
		(*bytes.Reader)(unsafe.Add(base, offsets.input)), true
}
