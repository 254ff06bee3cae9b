package node

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestNotReady: a node marked not ready (no TLS certificate) answers
// /readyz with 503 and the reason, refuses upgrades with 503 not_ready
// without burning the token, keeps its open connections, publishes the
// change once, and serves again once ready.
func TestNotReady(t *testing.T) {
	f := newFixture(t, nil)
	open := f.mustDial("before")
	defer open.Close()

	f.node.SetNotReady("no TLS certificate yet: connection refused")
	f.node.SetNotReady("no TLS certificate yet: still refused") // a new reason: no second publication
	resp, err := http.Get(f.httpURL("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "still refused") {
		t.Fatalf("/readyz = %d %q, want 503 with the reason", resp.StatusCode, body)
	}
	tok := f.mint("while-not-ready")
	_, resp, we, err := f.dial(tok, false)
	if err == nil || resp.StatusCode != 503 || we.Code != CodeNotReady || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("upgrade while not ready: %v %+v", err, we)
	}
	if f.metric("wsdirect_node_rejects_total", ReasonNotReady) != 1 {
		t.Fatal("not_ready reject not counted")
	}
	if err := open.WriteMessage(1, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := open.ReadMessage(); err != nil || string(msg) != "still here" {
		t.Fatalf("open connection: %q %v", msg, err)
	}

	f.node.SetNotReady("")
	if !f.node.Ready() {
		t.Fatal("not ready after SetNotReady(\"\")")
	}
	// The refused token was never verified, so it still works.
	ws, _, _, err := f.dial(tok, false)
	if err != nil {
		t.Fatalf("upgrade once ready: %v", err)
	}
	ws.Close()
	f.pub.mu.Lock()
	defer f.pub.mu.Unlock()
	if len(f.pub.ready) != 2 || f.pub.ready[0] || !f.pub.ready[1] {
		t.Fatalf("publisher saw readiness %v, want [false true]", f.pub.ready)
	}
}
