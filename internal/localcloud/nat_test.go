package localcloud

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// echoServer listens on addr and echoes every line, prefixed with the peer's IP.
func echoServer(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				peer := c.RemoteAddr().(*net.TCPAddr).IP.String()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, peer+" "+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln
}

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestNAT: a public address forwards to the private one as soon as something listens there,
// the private side sees the client's own address, a relayed connection costs two descriptors
// (no splice pipes), and the forward goes when the mapping or the listener goes.
func TestNAT(t *testing.T) {
	priv := netip.MustParseAddr("127.30.200.10")
	pub := netip.MustParseAddr("127.31.200.10")
	n := newNAT(slog.New(slog.NewTextHandler(io.Discard, nil)), 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	n.setRules(map[netip.Addr]netip.Addr{pub: priv})

	ln := echoServer(t, priv.String()+":0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	from := netip.AddrPortFrom(pub, port)
	probe.Until(t, 5*time.Second, "forwarder", func() error {
		if _, ok := n.forwarding(from); !ok {
			return fmt.Errorf("%s not forwarded", from)
		}
		return nil
	})

	// The client's address arrives unchanged; each connection costs the relay 2 descriptors.
	const conns = 50
	client := netip.MustParseAddr("127.0.0.77")
	before := openFDs(t)
	var cs []net.Conn
	for i := range conns {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: client.AsSlice()}}
		c, err := d.Dial("tcp", from.String())
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		fmt.Fprintf(c, "hello %d\n", i)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != fmt.Sprintf("%s hello %d\n", client, i) {
			t.Fatalf("echo %q %v", line, err)
		}
	}
	// Per connection: the client's socket, the relay's two, the server's one.
	if got := openFDs(t) - before; got > 4*conns+4 {
		t.Fatalf("%d connections opened %d descriptors, want at most %d (a spliced relay holds pipes)", conns, got, 4*conns+4)
	}

	// The mapping goes (an Elastic IP moved away): the forward and its connections go.
	n.setRules(map[netip.Addr]netip.Addr{})
	probe.Until(t, 5*time.Second, "forward removed", func() error {
		if _, ok := n.forwarding(from); ok {
			return fmt.Errorf("%s still forwarded", from)
		}
		return nil
	})
	_ = cs[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cs[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("a relayed connection outlived its mapping")
	}
	for _, c := range cs {
		c.Close()
	}
	if _, err := net.DialTimeout("tcp", from.String(), time.Second); err == nil {
		t.Fatal("the public address still accepts")
	}

	// Back, and then the listener goes (the process exited): the forward goes too.
	n.setRules(map[netip.Addr]netip.Addr{pub: priv})
	probe.Until(t, 5*time.Second, "forwarder again", func() error {
		if _, ok := n.forwarding(from); !ok {
			return fmt.Errorf("%s not forwarded", from)
		}
		return nil
	})
	ln.Close()
	probe.Until(t, 5*time.Second, "forward removed with the listener", func() error {
		if _, ok := n.forwarding(from); ok {
			return fmt.Errorf("%s still forwarded", from)
		}
		return nil
	})
}

// BenchmarkRelay is the cost of the 1:1 NAT in the data path: one round trip of a message
// through a TCP echo, straight to the private address and through the public one.
func BenchmarkRelay(b *testing.B) {
	priv := netip.MustParseAddr("127.30.201.10")
	pub := netip.MustParseAddr("127.31.201.10")
	ln := echoServer(b, priv.String()+":0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	f, err := newForwarder(netip.AddrPortFrom(pub, port), netip.AddrPortFrom(priv, port), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(f.close)
	for _, size := range []int{64, 16 << 10} {
		msg := strings.Repeat("x", size-1) + "\n"
		for _, path := range []struct {
			name string
			addr netip.AddrPort
		}{{"direct", netip.AddrPortFrom(priv, port)}, {"forwarded", netip.AddrPortFrom(pub, port)}} {
			b.Run(fmt.Sprintf("%s/%dB", path.name, size), func(b *testing.B) {
				c, err := net.Dial("tcp", path.addr.String())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				r := bufio.NewReaderSize(c, 64<<10)
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := io.WriteString(c, msg); err != nil {
						b.Fatal(err)
					}
					if _, err := r.ReadString('\n'); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
