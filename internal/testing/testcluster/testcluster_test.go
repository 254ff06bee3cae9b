package testcluster

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A killed listener resets every connection it accepted (the peer sees
// ECONNRESET, not a clean EOF) and accepts no more: what a crash looks like
// from the client side.
func TestTrackingListenerKillResets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := newTrackingListener(ln.(*net.TCPListener))
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		select {
		case <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatal("not accepted")
		}
	}
	tl.kill()
	for i, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("client %d read after kill: %v, want ECONNRESET", i, err)
		}
		if errors.Is(err, io.EOF) {
			t.Errorf("client %d saw a clean close", i)
		}
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("killed listener still accepts")
	}
	tl.kill() // idempotent
}

// validACME is DefaultACMEOptions with a CA filled in.
func validACME() *ACMEOptions {
	a := DefaultACMEOptions()
	a.Directory, a.CAFile, a.HTTPPort = "https://127.0.0.1:14000/dir", "/tmp/ca.pem", 5002
	return a
}

func TestOptionsValidation(t *testing.T) {
	if o := DefaultOptions(); o.validate() != nil {
		t.Fatalf("defaults refused: %v", o.validate())
	}
	o := DefaultOptions()
	o.TLS, o.ACME = true, validACME()
	if err := o.validate(); err != nil {
		t.Fatalf("ACME with TLS refused: %v", err)
	}
	// Each key is the field the error must name: Start fills nothing in.
	for field, mod := range map[string]func(*Options){
		"Nodes":          func(o *Options) { o.Nodes = 0 },
		"Auths":          func(o *Options) { o.Auths = 10 },
		"Cap":            func(o *Options) { o.Cap = 0 },
		"TokenTTL":       func(o *Options) { o.TokenTTL = 0 },
		"ReadyTimeout":   func(o *Options) { o.ReadyTimeout = 0 },
		"ACME needs TLS": func(o *Options) { o.ACME = validACME() },
		"ACME.Directory": func(o *Options) { o.TLS, o.ACME = true, validACME(); o.ACME.Directory = "" },
		"ACME.HTTPPort":  func(o *Options) { o.TLS, o.ACME = true, validACME(); o.ACME.HTTPPort = 0 },
		"ACME retry":     func(o *Options) { o.TLS, o.ACME = true, validACME(); o.ACME.RetryMin = 0 },
	} {
		o := DefaultOptions()
		mod(&o)
		if err := o.validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
}
