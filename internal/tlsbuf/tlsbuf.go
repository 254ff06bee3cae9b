// Package tlsbuf gives back the memory a crypto/tls server connection keeps
// from its handshake.
//
// A tls.Conn reads the client's hello into two buffers, the raw record
// buffer and the handshake message buffer, and keeps both at their largest
// size for the connection's life. Hellos are large now (a post-quantum key
// share makes Chromium's and Go's about 1.8 KB), so an idle connection
// holds about 3.5 KB it will never use again: on a node holding tens of
// thousands of idle wss:// connections that is as much as everything else
// TLS keeps (see docs/benchmarks.md). crypto/tls has no API to drop them,
// so Release does it by name through reflect, checking each field's name
// and type first; if a Go release renames or retypes them, Release does
// nothing and says so, and its test fails.
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
	v := reflect.ValueOf(tc).Elem()
	hand, ok1 := field[bytes.Buffer](v, "hand", bufferType)
	raw, ok2 := field[bytes.Buffer](v, "rawInput", bufferType)
	input, ok3 := field[bytes.Reader](v, "input", readerType)
	if !ok1 || !ok2 || !ok3 {
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

// field returns a pointer to v's field name when it exists with type t.
func field[T any](v reflect.Value, name string, t reflect.Type) (*T, bool) {
	f := v.FieldByName(name)
	if !f.IsValid() || f.Type() != t || !f.CanAddr() {
		return nil, false
	}
	return (*T)(unsafe.Pointer(f.UnsafeAddr())), true
}

// offsets of the *tls.Conn fields Idle reads, found once; ok is false when
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
	if !offsets.ok {
		return false, false
	}
	base := unsafe.Pointer(tc)
	hand := (*bytes.Buffer)(unsafe.Add(base, offsets.hand))
	raw := (*bytes.Buffer)(unsafe.Add(base, offsets.raw))
	input := (*bytes.Reader)(unsafe.Add(base, offsets.input))
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
