package tlscert

import (
	"bufio"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// testLogger discards logs unless WSDIRECT_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("WSDIRECT_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serveEcho accepts on ln (wrapped by m) and echoes every line back, until
// the test ends.
func serveEcho(t *testing.T, m *Manager, ln net.Listener) {
	t.Helper()
	tl := m.Listener(ln)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		tl.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// echoOnce writes a line on c and checks it comes back.
func echoOnce(t *testing.T, c *tls.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("write on the open connection: %v", err)
	}
	got, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(got) != msg {
		t.Fatalf("echo on the open connection: got %q, %v", got, err)
	}
}

// waitReady waits until m is ready, failing with its last reason.
func waitReady(t *testing.T, m *Manager, timeout time.Duration) {
	t.Helper()
	ready := make(chan struct{})
	var once sync.Once
	m.Watch(func(err error) {
		if err == nil {
			once.Do(func() { close(ready) })
		}
	})
	select {
	case <-ready:
	case <-time.After(timeout):
		t.Fatalf("not ready after %v: %v", timeout, m.Ready())
	}
}

// listen binds addr or fails the test.
func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// handshake dials addr with conf and returns the server's leaf.
func handshake(addr string, conf *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, conf)
}
