package node

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestCapBurst fires 3× the cap at once, several rounds. Exactly cap
// upgrades succeed, the rest get 503 + Retry-After + node_full, and the
// slot count never exceeds the cap.
func TestCapBurst(t *testing.T) {
	const limit = 8
	f := newFixture(t, func(c *Config) { c.MaxConns = limit })
	for round := 0; round < 3; round++ {
		toks := make([]string, 3*limit)
		for i := range toks {
			toks[i] = f.mint("burst")
		}
		var (
			mu      sync.Mutex
			ok      []*websocket.Conn
			refused int
			wrong   []string
		)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, tok := range toks {
			wg.Add(1)
			go func(tok string) {
				defer wg.Done()
				<-start
				ws, resp, we, err := f.dial(tok, false)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok = append(ok, ws)
				case resp != nil && resp.StatusCode == http.StatusServiceUnavailable &&
					resp.Header.Get("Retry-After") != "" && we != nil && we.Code == CodeNodeFull:
					refused++
				default:
					wrong = append(wrong, err.Error())
				}
			}(tok)
		}
		close(start)
		wg.Wait()
		if len(wrong) > 0 {
			t.Fatalf("round %d: unexpected outcomes: %v", round, wrong)
		}
		if len(ok) != limit || refused != 2*limit {
			t.Fatalf("round %d: %d accepted, %d refused; want %d and %d", round, len(ok), refused, limit, 2*limit)
		}
		if hw := f.node.HighWater(); hw > limit {
			t.Fatalf("high-water mark %d exceeds the cap %d", hw, limit)
		}
		eventually(t, 2*time.Second, "server-side count at the cap", func() bool { return f.node.Conns() == limit })
		for _, ws := range ok {
			ws.Close()
		}
		eventually(t, 5*time.Second, "all connections gone", func() bool { return f.node.slots.Load() == 0 })
	}
	if got := f.metric("wsdirect_node_rejects_total", ReasonFull); got != 3*2*limit {
		t.Fatalf("rejects{full} = %v", got)
	}
	if got := f.metric("wsdirect_node_accepts_total", ""); got != 3*limit {
		t.Fatalf("accepts = %v", got)
	}
	if hw := f.node.HighWater(); hw != limit {
		t.Fatalf("high-water mark %d, want exactly %d", hw, limit)
	}
}

// TestPublisherCounts: every connect and disconnect is published, and the
// last published value always matches the live count.
func TestPublisherCounts(t *testing.T) {
	f := newFixture(t, nil)
	var conns []*websocket.Conn
	for i := 0; i < 5; i++ {
		conns = append(conns, f.mustDial("p"))
	}
	eventually(t, 2*time.Second, "published 5", func() bool { v, ok := f.pub.last(); return ok && v == 5 })
	conns[0].Close()
	conns[1].Close()
	eventually(t, 3*time.Second, "published 3", func() bool { v, _ := f.pub.last(); return v == 3 })
	if f.node.Conns() != 3 || f.metric("wsdirect_node_connections", "") != 3 {
		t.Fatalf("Conns %d", f.node.Conns())
	}
	// Concurrent churn must still end on the true value.
	var wg sync.WaitGroup
	var churned atomic.Int64
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws, _, _, err := f.dial(f.mint("churn"), false)
			if err != nil {
				// A 2 s handshake timeout can pass on a loaded machine;
				// this test is about what gets published.
				t.Logf("churn dial: %v", err)
				return
			}
			churned.Add(1)
			ws.Close()
		}()
	}
	wg.Wait()
	if churned.Load() == 0 {
		t.Fatal("no churn connection succeeded")
	}
	// The client's dial returns once the 101 is written, before the server
	// registers (and publishes) the connection, so a churn connection can
	// still be published after the count is back at 3: wait for every
	// connect and disconnect, not only for the final value.
	want := 5 + 2 + 2*int(churned.Load())
	published := func() int {
		f.pub.mu.Lock()
		defer f.pub.mu.Unlock()
		return len(f.pub.conns)
	}
	eventually(t, 5*time.Second, "churn settled", func() bool {
		v, _ := f.pub.last()
		return published() >= want && v == 3 && f.node.Conns() == 3
	})
	f.pub.mu.Lock()
	for _, v := range f.pub.conns {
		if v < 0 || v > 100 {
			t.Errorf("published impossible count %d", v)
		}
	}
	f.pub.mu.Unlock()
}

// TestPerUserLimit: one user may hold at most MaxConnsPerUser connections
// on a node, even when it sends more upgrades at once; the next gets 429
// too_many_connections, other users are unaffected, and a closed connection
// gives its user the room back.
func TestPerUserLimit(t *testing.T) {
	const perUser = 3
	f := newFixture(t, func(c *Config) { c.MaxConns = 50; c.MaxConnsPerUser = perUser })
	toks := make([]string, 4*perUser)
	for i := range toks {
		toks[i] = f.mint("hog")
	}
	var (
		mu      sync.Mutex
		ok      []*websocket.Conn
		limited int
		wrong   []string
	)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Add(1)
		go func(tok string) {
			defer wg.Done()
			<-start
			ws, resp, we, err := f.dial(tok, false)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok = append(ok, ws)
			case resp != nil && resp.StatusCode == http.StatusTooManyRequests && we != nil && we.Code == CodeTooManyConnections &&
				resp.Header.Get("Retry-After") != "":
				limited++
			default:
				wrong = append(wrong, err.Error())
			}
		}(tok)
	}
	close(start)
	wg.Wait()
	if len(wrong) > 0 {
		t.Fatalf("unexpected outcomes: %v", wrong)
	}
	if len(ok) != perUser || limited != len(toks)-perUser {
		t.Fatalf("%d accepted, %d limited; want %d and %d", len(ok), limited, perUser, len(toks)-perUser)
	}
	if got := f.metric("wsdirect_node_rejects_total", ReasonUserLimit); got != float64(limited) {
		t.Errorf("user_limit rejects metric = %v, want %d", got, limited)
	}
	// Another user is not affected.
	other, _, _, err := f.dial(f.mint("someone-else"), false)
	if err != nil {
		t.Fatalf("another user: %v", err)
	}
	other.Close()
	// Closing one gives the room back.
	ok[0].Close()
	eventually(t, 5*time.Second, "hog at 2 connections", func() bool { return f.node.users.count("hog") == perUser-1 })
	ws, _, _, err := f.dial(f.mint("hog"), false)
	if err != nil {
		t.Fatalf("after a close: %v", err)
	}
	ws.Close()
	for _, c := range ok[1:] {
		c.Close()
	}
	eventually(t, 5*time.Second, "all closed", func() bool { return f.node.users.count("hog") == 0 && f.node.Conns() == 0 })
}
