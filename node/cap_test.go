package node

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
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
		probe.Until(t, 10*time.Second, "server-side count at the cap", func() error { return probe.Equal("Conns", f.node.Conns(), limit) })
		for _, ws := range ok {
			ws.Close()
		}
		probe.Until(t, 10*time.Second, "all connections gone", func() error { return probe.Equal("slots", f.node.slots.Load(), 0) })
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
	probe.Until(t, 10*time.Second, "published 5", func() error {
		v, ok := f.pub.last()
		return probe.Check(ok && v == 5, "last published %d (any: %t)", v, ok)
	})
	conns[0].Close()
	conns[1].Close()
	probe.Until(t, 10*time.Second, "published 3", func() error { v, _ := f.pub.last(); return probe.Equal("last published", v, 3) })
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
	// A client sees its upgrade succeed before the node registers the
	// connection, and its close before the node unregisters it: wait for
	// the node to publish once per connect and disconnect, ending on 3.
	want := 5 + 2 + 2*int(churned.Load())
	probe.Until(t, 10*time.Second, fmt.Sprintf("%d publications ending on 3", want), func() error {
		f.pub.mu.Lock()
		n := len(f.pub.conns)
		f.pub.mu.Unlock()
		v, _ := f.pub.last()
		return probe.Check(n >= want && v == 3 && f.node.Conns() == 3, "%d publications, last %d, Conns %d", n, v, f.node.Conns())
	})
	f.pub.mu.Lock()
	defer f.pub.mu.Unlock()
	for _, v := range f.pub.conns {
		if v < 0 || v > 100 {
			t.Errorf("published impossible count %d", v)
		}
	}
}
