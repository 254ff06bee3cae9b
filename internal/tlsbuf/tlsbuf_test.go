package tlsbuf

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
)

// pair returns a server-side *tls.Conn with its handshake done, and the
// client end.
func pair(t testing.TB) (server, client *tls.Conn) {
	t.Helper()
	ca, err := testca.New("tlsbuf CA")
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
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *tls.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		tc := c.(*tls.Conn)
		_ = tc.Handshake()
		accepted <- tc
	}()
	// The default client offers a post-quantum key share: a large hello,
	// as browsers send.
	cl, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { srv.Close(); cl.Close() })
	return srv, cl
}

// field returns a pointer to v's field name when it exists with type t:
// the tests look at the buffers by name, apart from the offsets the package
// uses.
func field[T any](v reflect.Value, name string, t reflect.Type) (*T, bool) {
	f := v.FieldByName(name)
	if !f.IsValid() || f.Type() != t || !f.CanAddr() {
		return nil, false
	}
	return (*T)(unsafe.Pointer(f.UnsafeAddr())), true
}

func capacities(t *testing.T, c *tls.Conn) (hand, raw int) {
	t.Helper()
	v := reflect.ValueOf(c).Elem()
	h, ok1 := field[bytes.Buffer](v, "hand", bufferType)
	r, ok2 := field[bytes.Buffer](v, "rawInput", bufferType)
	if !ok1 || !ok2 {
		t.Fatal("crypto/tls.Conn no longer has the hand and rawInput buffers: Release does nothing on this Go; revisit it")
	}
	return h.Cap(), r.Cap()
}

func TestReleaseDropsHandshakeBuffers(t *testing.T) {
	srv, cl := pair(t)
	hand, raw := capacities(t, srv)
	if hand < 1024 || raw < 1024 {
		t.Fatalf("after the handshake the server holds hand %d and raw %d bytes; expected the hello's size", hand, raw)
	}
	if !Release(srv) {
		t.Fatal("Release released nothing")
	}
	if hand, raw := capacities(t, srv); hand != 0 || raw != 0 {
		t.Fatalf("after Release: hand %d, raw %d", hand, raw)
	}
	// The connection still works both ways.
	go func() { _, _ = cl.Write([]byte("hello")) }()
	buf := make([]byte, 5)
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read after Release: %q %v", buf, err)
	}
	go func() { _, _ = srv.Write([]byte("back")) }()
	buf = buf[:4]
	_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(cl, buf); err != nil || string(buf) != "back" {
		t.Fatalf("client read: %q %v", buf, err)
	}
	if _, raw := capacities(t, srv); raw > 1024 {
		t.Errorf("a 5-byte record grew the raw buffer to %d", raw)
	}
}

// TestReleaseKeepsUnreadData: decrypted bytes not read yet live in the raw
// buffer; Release must leave it alone then, and they must still arrive.
func TestReleaseKeepsUnreadData(t *testing.T) {
	srv, cl := pair(t)
	if _, err := cl.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(srv, one); err != nil {
		t.Fatal(err)
	}
	Release(srv)
	if _, raw := capacities(t, srv); raw == 0 {
		t.Fatal("Release dropped a raw buffer holding unread data")
	}
	rest := make([]byte, 9)
	if _, err := io.ReadFull(srv, rest); err != nil || string(rest) != "123456789" {
		t.Fatalf("rest %q %v", rest, err)
	}
}

func TestReleaseIgnoresOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Release(a) {
		t.Error("released a plain conn")
	}
	if Release(tls.Server(a, &tls.Config{})) {
		t.Error("released a conn before its handshake")
	}
}

// TestIdleSeesBufferedRecords: two records read from the socket in one
// go leave the second inside crypto/tls, where the socket's readiness
// cannot show it; Idle reports it until it has been read, then reports
// idle and drops the buffers.
func TestIdleSeesBufferedRecords(t *testing.T) {
	if _, known := Known(&tls.Conn{}); !known {
		t.Fatal("crypto/tls.Conn no longer has the fields Idle reads: nodes fall back to a goroutine per wss connection; revisit Idle")
	}
	srv, cl := pair(t)
	if _, err := cl.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	// Both writes have returned, so on loopback both records are in the
	// server's socket: its first read takes both.
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, err := srv.Read(buf)
	if err != nil || string(buf[:n]) != "one" {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	if idle, known := Idle(srv); idle || !known {
		t.Fatalf("Idle = %v, %v with a record buffered; want false, true", idle, known)
	}
	n, err = srv.Read(buf)
	if err != nil || string(buf[:n]) != "two" {
		t.Fatalf("second read %q, %v", buf[:n], err)
	}
	if idle, known := Idle(srv); !idle || !known {
		t.Fatalf("Idle = %v, %v with nothing buffered; want true, true", idle, known)
	}
	if _, rawCap := capacities(t, srv); rawCap != 0 {
		t.Fatalf("raw buffer of %d bytes kept by an idle connection", rawCap)
	}
	// A partly read record is not idle either.
	if _, err := cl.Write([]byte("three")); err != nil {
		t.Fatal(err)
	}
	n, err = srv.Read(buf[:2])
	if err != nil || string(buf[:n]) != "th" {
		t.Fatalf("partial read %q, %v", buf[:n], err)
	}
	if idle, _ := Idle(srv); idle {
		t.Fatal("Idle with 3 decrypted bytes unread")
	}
}

// TestIdleOtherConns: a plain connection has nothing for Idle to see.
func TestIdleOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if idle, known := Idle(a); !idle || !known {
		t.Fatalf("Idle(pipe) = %v, %v", idle, known)
	}
}

// TestLendAndGiveBack: a read after Lend goes into the lent array, not one
// crypto/tls allocates; Idle takes the array back and the next Lend gives
// one from the pool; records larger than the array still read whole.
func TestLendAndGiveBack(t *testing.T) {
	srv, cl := pair(t)
	Idle(srv) // drop what the handshake left
	if _, rawCap := capacities(t, srv); rawCap != 0 {
		t.Fatalf("raw buffer of %d bytes after Idle", rawCap)
	}
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	echo := func(msg []byte) {
		t.Helper()
		Lend(srv)
		if _, rawCap := capacities(t, srv); rawCap != recordBufSize {
			t.Fatalf("raw buffer of %d bytes after Lend, want %d", rawCap, recordBufSize)
		}
		if _, err := cl.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(srv, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:len(msg)], msg) {
			t.Fatalf("read %d bytes that differ from those written", len(msg))
		}
		if idle, _ := Idle(srv); !idle {
			t.Fatal("not idle after reading all that was written")
		}
		if _, rawCap := capacities(t, srv); rawCap != 0 {
			t.Fatalf("raw buffer of %d bytes kept after Idle", rawCap)
		}
	}
	echo([]byte("small message"))
	// Taken back: in this goroutine's pool (per P, and no collection
	// between), the next Lend is very likely the same array; what must
	// hold is that reads still come out right.
	echo(bytes.Repeat([]byte("x"), 100))
	echo(bytes.Repeat([]byte("big "), 10_000)) // 40 KB: crypto/tls grows past the array
	echo([]byte("small again"))
	// Lend leaves a buffer that already holds data alone.
	if _, err := cl.Write([]byte("pending")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(srv, buf[:3]); err != nil {
		t.Fatal(err)
	}
	_, before := capacities(t, srv)
	Lend(srv)
	if _, after := capacities(t, srv); after != before {
		t.Fatalf("Lend replaced a buffer holding unread data (%d -> %d bytes)", before, after)
	}
	if _, err := io.ReadFull(srv, buf[:4]); err != nil || string(buf[:4]) != "ding" {
		t.Fatalf("rest of the record %q, %v", buf[:4], err)
	}
	// Not a *tls.Conn: nothing happens.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	Lend(a)
}

// BenchmarkRecordRead: reading one small record after Idle dropped the
// buffer, with and without Lend; allocs/op is the point.
func BenchmarkRecordRead(b *testing.B) {
	for _, lend := range []bool{false, true} {
		name := "crypto-tls-allocates"
		if lend {
			name = "lent"
		}
		b.Run(name, func(b *testing.B) {
			srv, cl := pair(b)
			msg := make([]byte, 64)
			buf := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if lend {
					Lend(srv)
				}
				if _, err := cl.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(srv, buf); err != nil {
					b.Fatal(err)
				}
				Idle(srv)
			}
		})
	}
}
