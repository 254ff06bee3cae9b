package node

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// closeRecorder reads every client until it closes and records the codes.
type closeRecorder struct {
	mu    sync.Mutex
	codes []int
	wg    sync.WaitGroup
}

func (r *closeRecorder) watch(ws *websocket.Conn) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			_, _, err := ws.ReadMessage()
			if err == nil {
				continue
			}
			code := -1
			if ce, ok := err.(*websocket.CloseError); ok {
				code = ce.Code
			}
			r.mu.Lock()
			r.codes = append(r.codes, code)
			r.mu.Unlock()
			return
		}
	}()
}

func TestDrain(t *testing.T) {
	const clients = 25
	f := newFixture(t, func(c *Config) {
		c.DrainBatch = 4
		c.DrainInterval = 30 * time.Millisecond
	})
	rec := &closeRecorder{}
	for i := 0; i < clients; i++ {
		rec.watch(f.mustDial("d"))
	}
	start := time.Now()
	if err := f.node.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	rec.wg.Wait()
	if len(rec.codes) != clients {
		t.Fatalf("%d clients closed, want %d", len(rec.codes), clients)
	}
	for _, c := range rec.codes {
		if c != wire.CloseDraining {
			t.Fatalf("close codes %v, want all %d", rec.codes, wire.CloseDraining)
		}
	}
	// 25 clients in batches of 4 take at least 6 intervals: batching happened.
	if el < 6*30*time.Millisecond {
		t.Fatalf("drain took %s: clients were not batched", el)
	}
	if f.node.Conns() != 0 {
		t.Fatalf("Conns = %d after drain", f.node.Conns())
	}
	select {
	case <-f.node.Drained():
	default:
		t.Fatal("Drained() not closed")
	}
	f.pub.mu.Lock()
	if len(f.pub.draining) != 1 || !f.pub.draining[0] {
		t.Errorf("publisher saw draining %v", f.pub.draining)
	}
	f.pub.mu.Unlock()
	// The last connection frees its slot (which ends the drain) just
	// before it publishes the count.
	probe.Until(t, 10*time.Second, "the count 0 published", func() error {
		v, _ := f.pub.last()
		return probe.Equal("last published", v, 0)
	})
	resp, err := http.Get(f.httpURL("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d while draining", resp.StatusCode)
	}
	_, resp, we, err := f.dial(f.mint("late"), false)
	if err == nil || resp.StatusCode != 503 || we.Code != CodeDraining || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("upgrade while draining: %v %+v", err, we)
	}
	if f.metric("wsdirect_node_drains_total", "") != 1 || f.metric("wsdirect_node_rejects_total", ReasonDraining) != 1 {
		t.Fatal("drain metrics")
	}
	// A second drain is a no-op that returns at once.
	if err := f.node.Drain(context.Background()); err != nil || f.metric("wsdirect_node_drains_total", "") != 1 {
		t.Fatalf("second drain: %v", err)
	}
}

// TestDrainDeadline: with tiny batches and peers that never answer the
// close frame, the drain still ends at its deadline and leaves nobody. The
// deadline is the behaviour here, so the test times the drain, against
// bounds far apart: without the deadline it could not end before the first
// DrainInterval, ten times the deadline.
func TestDrainDeadline(t *testing.T) {
	const deadline, interval = 500 * time.Millisecond, 5 * time.Second
	f := newFixture(t, func(c *Config) {
		c.DrainBatch = 1
		c.DrainInterval = interval
		c.DrainDeadline = deadline
		c.CloseGrace = time.Minute // silent peers would hold on this long
	})
	for i := 0; i < 10; i++ {
		f.rawUpgrade(f.mint("silent")) // never reads, never answers the close
	}
	probe.Until(t, 10*time.Second, "10 connections", func() error { return probe.Equal("Conns", f.node.Conns(), 10) })
	start := time.Now()
	err := f.node.Drain(context.Background())
	el := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("drain with clients left at the deadline returned %v, want DeadlineExceeded", err)
	}
	if el < deadline || el >= interval {
		t.Fatalf("drain returned after %s, want at its %s deadline (and before the %s interval)", el, deadline, interval)
	}
	probe.Until(t, 10*time.Second, "forced closes", func() error { return probe.Equal("Conns", f.node.Conns(), 0) })
}

func TestAdminDrain(t *testing.T) {
	f := newFixture(t, nil)
	rec := &closeRecorder{}
	rec.watch(f.mustDial("a"))
	post := func(method, auth string) int {
		req, _ := http.NewRequest(method, f.httpURL("/admin/drain"), nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, auth := range []string{"", "Bearer wrong", "admin-secret", "Basic admin-secret"} {
		if code := post("POST", auth); code != http.StatusUnauthorized {
			t.Fatalf("auth %q: %d, want 401", auth, code)
		}
	}
	if code := post("GET", "Bearer admin-secret"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", code)
	}
	if f.node.Draining() {
		t.Fatal("drained without authorization")
	}
	if code := post("POST", "Bearer admin-secret"); code != http.StatusAccepted {
		t.Fatalf("authorized drain: %d", code)
	}
	select {
	case <-f.node.Drained():
	case <-time.After(5 * time.Second):
		t.Fatal("admin drain did not finish")
	}
	rec.wg.Wait()
	if len(rec.codes) != 1 || rec.codes[0] != wire.CloseDraining {
		t.Fatalf("codes %v", rec.codes)
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AdminToken = "" })
	req, _ := http.NewRequest("POST", f.httpURL("/admin/drain"), nil)
	req.Header.Set("Authorization", "Bearer ")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || f.node.Draining() {
		t.Fatalf("%d, draining %v", resp.StatusCode, f.node.Draining())
	}
}

func TestCloseSendsShutdown(t *testing.T) {
	f := newFixture(t, nil)
	rec := &closeRecorder{}
	for i := 0; i < 3; i++ {
		rec.watch(f.mustDial("c"))
	}
	if err := f.node.Close(); err != nil {
		t.Fatal(err)
	}
	rec.wg.Wait()
	for _, c := range rec.codes {
		if c != wire.CloseShutdown {
			t.Fatalf("codes %v, want %d", rec.codes, wire.CloseShutdown)
		}
	}
	if len(rec.codes) != 3 || f.node.Conns() != 0 {
		t.Fatalf("codes %v conns %d", rec.codes, f.node.Conns())
	}
}
