// Package tlsbuf sees what a crypto/tls connection has read but not yet
// returned (Idle), gives back the buffers it keeps from its handshake
// and its records (Release, Idle), and lends it a pooled record buffer
// for a read (Lend).
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
	"sync"
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
		dropRecordBuf(raw, input)
		released = true
	}
	return released
}

// recordBufSize is the size of the arrays Lend gives: room for a record of
// up to 1.5 KiB and the 512 bytes crypto/tls asks for beyond what it needs.
// A larger record makes crypto/tls grow the buffer itself, as before.
const recordBufSize = 2048

// recordBufs holds the arrays Lend gives and Idle takes back, as pointers
// to their first byte (an unsafe.Pointer goes into an interface without an
// allocation, where a slice would not).
var recordBufs sync.Pool

// Lend gives c's record buffer a pooled array to read into when it has
// none. Idle drops the buffer of a connection that holds nothing, so that an
// idle connection keeps no array; without Lend crypto/tls would then
// allocate one (576 bytes, for a small record) for every record it reads,
// which under message load was most of a wss node's garbage. Idle gives the
// array back. The caller must be c's only reader; a connection that is not
// a *tls.Conn, or whose buffer is not empty, is left alone.
func Lend(c net.Conn) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return
	}
	_, raw, _, ok := buffers(tc)
	if !ok || raw.Cap() > 0 {
		return
	}
	var arr *[recordBufSize]byte
	if p, _ := recordBufs.Get().(unsafe.Pointer); p != nil {
		arr = (*[recordBufSize]byte)(p)
	} else {
		arr = new([recordBufSize]byte)
	}
	*raw = *bytes.NewBuffer(arr[:0])
}

// dropRecordBuf empties the record buffer raw and the reader of its
// decrypted data, which must both hold nothing, and gives the array back to
// recordBufs when it is one of Lend's size (crypto/tls's own, grown for a
// large record, is left to the collector).
func dropRecordBuf(raw *bytes.Buffer, input *bytes.Reader) {
	input.Reset(nil) // it may still hold a slice of the array
	raw.Reset()
	if raw.Cap() == recordBufSize {
		recordBufs.Put(unsafe.Pointer(unsafe.SliceData(raw.Bytes())))
	}
	*raw = bytes.Buffer{}
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
		dropRecordBuf(raw, input)
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
