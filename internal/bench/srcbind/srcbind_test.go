package srcbind

import (
	"net"
	"testing"
	"time"
)

// TestDialer: the connection comes from the source address, and on Linux
// the socket carries IP_BIND_ADDRESS_NO_PORT when it binds.
func TestDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	src := net.ParseIP("127.0.0.2")
	d := Dialer(src, 5*time.Second)
	var opt int
	var optErr error
	inner := d.Control
	d.Control = func(network, address string, rc syscallRawConn) error {
		if err := inner(network, address, rc); err != nil {
			return err
		}
		opt, optErr = bindNoPortOption(rc)
		return nil
	}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if local := c.LocalAddr().(*net.TCPAddr); !local.IP.Equal(src) {
		t.Fatalf("local address %s, want source %s", local, src)
	}
	if optErr != nil {
		t.Fatal(optErr)
	}
	if opt != wantOption {
		t.Fatalf("IP_BIND_ADDRESS_NO_PORT = %d, want %d", opt, wantOption)
	}
}
