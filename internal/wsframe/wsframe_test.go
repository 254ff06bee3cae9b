package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/readiness"
)

// script is a net.Conn whose reads return the given chunks one by one,
// then io.EOF: the test decides how the bytes are cut.
type script struct {
	net.Conn // nil: only Read is used
	chunks   [][]byte
	reads    int
}

func (s *script) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	s.reads++
	n := copy(p, s.chunks[0])
	s.chunks[0] = s.chunks[0][n:]
	if len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

type recorder struct {
	pings, pongs []string
	err          error
}

func (r *recorder) Ping(p []byte) error { r.pings = append(r.pings, string(p)); return r.err }
func (r *recorder) Pong(p []byte) error { r.pongs = append(r.pongs, string(p)); return r.err }

// frame encodes a frame; mask is nil for an unmasked one.
func frame(fin bool, op byte, payload []byte, mask []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b1 := byte(0)
	if mask != nil {
		b1 = 0x80
	}
	var h []byte
	switch n := len(payload); {
	case n < 126:
		h = []byte{b0, b1 | byte(n)}
	case n < 1<<16:
		h = []byte{b0, b1 | 126}
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = []byte{b0, b1 | 127}
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	if mask == nil {
		return append(h, payload...)
	}
	h = append(h, mask...)
	for i, c := range payload {
		h = append(h, c^mask[i&3])
	}
	return h
}

var key = []byte{1, 2, 3, 4}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// readAll reads through c with a large buffer until n bytes, returning
// each Read's result separately.
func reads(t *testing.T, c *Conn, n int) [][]byte {
	t.Helper()
	var out [][]byte
	total := 0
	for total < n {
		p := make([]byte, 1<<16)
		m, err := c.Read(p)
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", total, err)
		}
		out = append(out, p[:m])
		total += m
	}
	return out
}

// TestReadStopsAtFrameEnd: two frames that arrive together are handed out
// one per Read, never both in one (so gorilla never buffers the second).
func TestReadStopsAtFrameEnd(t *testing.T) {
	f1 := frame(true, 1, []byte("first"), key)
	f2 := frame(true, 2, bytes.Repeat([]byte("x"), 300), key)
	c := Server(&script{chunks: [][]byte{cat(f1, f2)}}, &recorder{})
	got := reads(t, c, len(f1))
	if len(got) != 1 || !bytes.Equal(got[0], f1) {
		t.Fatalf("first Read = %q, want exactly the first frame", got)
	}
	if c.Buffered() != len(f2) {
		t.Fatalf("Buffered = %d, want the second frame's %d", c.Buffered(), len(f2))
	}
	got = reads(t, c, len(f2))
	if !bytes.Equal(bytes.Join(got, nil), f2) {
		t.Fatal("second frame corrupted")
	}
	if c.Buffered() != 0 || c.buf != nil {
		t.Fatal("buffer kept after everything was read")
	}
}

// TestControlFramesTakenOut: pings and pongs before a message and between
// its fragments go to the Handler, unmasked, and never reach gorilla;
// Next reports a message only once one is at the head.
func TestControlFramesTakenOut(t *testing.T) {
	rec := &recorder{}
	data1 := frame(false, 1, []byte("hel"), key)
	data2 := frame(true, 0, []byte("lo"), key)
	c := Server(&script{chunks: [][]byte{
		cat(frame(true, 0xA, []byte("pong-1"), key), frame(true, 0x9, []byte("ping-1"), key)),
		cat(data1, frame(true, 0xA, []byte("pong-2"), key)),
		data2,
	}}, rec)
	if err := c.Fill(); err != nil {
		t.Fatal(err)
	}
	ready, err := c.Next()
	if err != nil || ready {
		t.Fatalf("Next = %v, %v; want false: only control frames so far", ready, err)
	}
	if len(rec.pongs) != 1 || rec.pongs[0] != "pong-1" || len(rec.pings) != 1 || rec.pings[0] != "ping-1" {
		t.Fatalf("handler saw pings %q pongs %q", rec.pings, rec.pongs)
	}
	if err := c.Fill(); err != nil {
		t.Fatal(err)
	}
	if ready, err := c.Next(); err != nil || !ready {
		t.Fatalf("Next = %v, %v; want a message", ready, err)
	}
	got := bytes.Join(reads(t, c, len(data1)+len(data2)), nil)
	if !bytes.Equal(got, cat(data1, data2)) {
		t.Fatalf("gorilla would read %q", got)
	}
	if len(rec.pongs) != 2 || rec.pongs[1] != "pong-2" {
		t.Fatalf("pong between fragments: %q", rec.pongs)
	}
}

// TestMalformedControlPassesThrough: control frames gorilla must refuse
// (unmasked from a client, fragmented, too long, RSV bits) are left to it.
func TestMalformedControlPassesThrough(t *testing.T) {
	for name, f := range map[string][]byte{
		"unmasked":   frame(true, 0x9, []byte("x"), nil),
		"fragmented": frame(false, 0x9, []byte("x"), key),
		"too long":   frame(true, 0xA, bytes.Repeat([]byte("y"), 200), key),
		"rsv":        func() []byte { b := frame(true, 0x9, []byte("x"), key); b[0] |= 0x40; return b }(),
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			c := Server(&script{chunks: [][]byte{f}}, rec)
			if err := c.Fill(); err != nil {
				t.Fatal(err)
			}
			if ready, err := c.Next(); err != nil || !ready {
				t.Fatalf("Next = %v, %v; want it handed to gorilla", ready, err)
			}
			if got := bytes.Join(reads(t, c, len(f)), nil); !bytes.Equal(got, f) {
				t.Fatal("frame altered")
			}
			if len(rec.pings)+len(rec.pongs) != 0 {
				t.Fatal("handler called for a malformed frame")
			}
		})
	}
}

// TestClientSideUnmasked: on a client connection the server's unmasked
// pings are taken out, and the handshake is handed out a byte at a time.
func TestClientSideUnmasked(t *testing.T) {
	rec := &recorder{}
	resp := []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n")
	msg := frame(true, 1, []byte("hi"), nil)
	c := Client(&script{chunks: [][]byte{cat(resp, frame(true, 0x9, []byte("p"), nil), msg)}}, rec)
	for i := range resp {
		p := make([]byte, 100)
		n, err := c.Read(p)
		if err != nil || n != 1 || p[0] != resp[i] {
			t.Fatalf("handshake byte %d: %d, %v", i, n, err)
		}
	}
	c.Upgraded()
	if ready, err := c.Next(); err != nil || !ready {
		t.Fatalf("Next = %v, %v", ready, err)
	}
	if len(rec.pings) != 1 || rec.pings[0] != "p" {
		t.Fatalf("pings %q", rec.pings)
	}
	if got := bytes.Join(reads(t, c, len(msg)), nil); !bytes.Equal(got, msg) {
		t.Fatal("message altered")
	}
}

// TestHandlerErrorFailsRead: a handler's error is the read's error.
func TestHandlerErrorFailsRead(t *testing.T) {
	boom := errors.New("boom")
	c := Server(&script{chunks: [][]byte{frame(true, 0x9, nil, key)}}, &recorder{err: boom})
	if err := c.Fill(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next = %v, want the handler's error", err)
	}
}

// TestSplitHeader: a header cut after one byte is completed by reading on,
// because the frame has begun.
func TestSplitHeader(t *testing.T) {
	f := frame(true, 1, bytes.Repeat([]byte("z"), 1000), key)
	chunks := [][]byte{}
	for i := 0; i < len(f); i += 3 {
		chunks = append(chunks, f[i:min(i+3, len(f))])
	}
	s := &script{chunks: chunks}
	c := Server(s, &recorder{})
	if err := c.Fill(); err != nil {
		t.Fatal(err)
	}
	if ready, err := c.Next(); err != nil || !ready {
		t.Fatalf("Next = %v, %v", ready, err)
	}
	if got := bytes.Join(reads(t, c, len(f)), nil); !bytes.Equal(got, f) {
		t.Fatal("frame altered")
	}
	if _, err := c.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("Read at the end = %v, want io.EOF", err)
	}
}

// TestFillNowAndDrained: FillNow reads a socket without waiting, says when
// it has nothing and when the peer has gone; Drained tells a read that
// emptied the socket from one that filled the buffer.
func TestFillNowAndDrained(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	c := Server(server, &recorder{})
	if err := c.FillNow(); !errors.Is(err, readiness.ErrWouldBlock) {
		t.Fatalf("FillNow on a silent socket: %v, want readiness.ErrWouldBlock", err)
	}
	if c.buf != nil {
		t.Error("an empty FillNow kept a buffer")
	}
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.FillNow()
		if err == nil {
			break
		}
		if !errors.Is(err, readiness.ErrWouldBlock) || time.Now().After(deadline) {
			t.Fatalf("FillNow with data sent: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c.Buffered() != 5 || !c.Drained() {
		t.Fatalf("buffered %d, drained %v; want 5, true", c.Buffered(), c.Drained())
	}
	// More than the buffer holds: the read fills it, and is not drained.
	big := bytes.Repeat([]byte("x"), 2*bufSize)
	if _, err := client.Write(big); err != nil {
		t.Fatal(err)
	}
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	for c.Buffered() < bufSize {
		if err := c.Fill(); err != nil {
			t.Fatal(err)
		}
	}
	if c.Drained() {
		t.Error("a read that filled the buffer counts as drained")
	}
	client.Close()
	c.r = c.w // as if gorilla had read it all
	c.releaseIfEmpty()
	for i := 0; ; i++ {
		err := c.FillNow()
		if errors.Is(err, io.EOF) {
			break
		}
		if i > 1000 || (err != nil && !errors.Is(err, readiness.ErrWouldBlock)) {
			t.Fatalf("FillNow after the peer closed: %v, want io.EOF", err)
		}
		c.r = c.w
		c.releaseIfEmpty()
		if errors.Is(err, readiness.ErrWouldBlock) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}
