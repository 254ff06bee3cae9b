package haproxycfg

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// TestHAProxySpreadsSourceIPs runs the real haproxy on a rendered TCP-mode
// config, entirely on loopback, and checks that client connections reach
// the backend from every configured source IP: the property that lifts the
// 64k-per-destination ceiling.
func TestHAProxySpreadsSourceIPs(t *testing.T) {
	bin := haproxyOrSkip(t)

	backend, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	var mu sync.Mutex
	seen := map[string]int{}
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			mu.Lock()
			seen[host]++
			mu.Unlock()
			// Echo one line so the client knows it reached the backend
			// (health-check connects just close).
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, _ = io.WriteString(c, line)
				}
			}()
		}
	}()

	frontPort := probe.LoopbackPort(t)
	sources := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}
	hc := withBackends([]Backend{{Name: "b", Address: "127.0.0.2", Port: backend.Addr().(*net.TCPAddr).Port}}, sources...)
	hc.Bind = fmt.Sprintf("127.0.0.1:%d", frontPort)
	hc.Mode, hc.Balance, hc.MaxConn = ModeTCP, "roundrobin", 500
	hc.HealthCheckInterval, hc.HealthCheckRise = time.Second, 1
	cfg, err := Render(hc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out syncBuffer
	cmd := exec.CommandContext(ctx, bin, "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	front := fmt.Sprintf("127.0.0.1:%d", frontPort)
	err = probe.Poll(ctx, 15*time.Second, 50*time.Millisecond, "haproxy to listen on "+front, func() error {
		c, err := net.DialTimeout("tcp", front, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	mu.Lock()
	clear(seen) // drop the readiness probe's and early health checks' connections
	mu.Unlock()

	const conns = 30
	for i := range conns {
		c, err := net.DialTimeout("tcp", front, 5*time.Second)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := fmt.Sprintf("hello %d\n", i)
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatalf("conn %d write: %v", i, err)
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != msg {
			t.Fatalf("conn %d: echo %q, %v (haproxy output:\n%s)", i, got, err, out.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sources {
		// Round robin over 3 server lines: each source carries about a
		// third of the 30 client connections, plus health checks.
		if seen[s] < conns/len(sources) {
			t.Errorf("backend saw %d connections from source %s, want >= %d (all: %v)", seen[s], s, conns/len(sources), seen)
		}
	}
	for host := range seen {
		if host != "127.0.0.11" && host != "127.0.0.12" && host != "127.0.0.13" {
			t.Errorf("backend saw a connection from %s, which is not a configured source IP", host)
		}
	}
}

// syncBuffer collects haproxy's output, written by exec's copying
// goroutines and read by the test on failure.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
