package node

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/token"
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

// TestNotReadyUntilTokenFloor: a node whose verifier refuses tokens issued
// before a moment still to come (a start plus the clock-skew leeway) is not
// ready until then, so auth sends it no client whose token it would refuse;
// a TLS reason given and cleared meanwhile does not make it ready early.
func TestNotReadyUntilTokenFloor(t *testing.T) {
	_, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys := token.KeySet{}
	signer := token.NewSigner(priv)
	keys.Add(signer.PublicKey())
	pub := &fakePub{}
	floor := time.Now().Add(400 * time.Millisecond)
	n, err := New(testConfig(), token.NewVerifier(testNode, keys).RejectIssuedBefore(floor), pub)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	readyLog := func() []bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return append([]bool(nil), pub.ready...)
	}
	if n.Ready() || !strings.Contains(n.NotReadyReason(), "restart rule") || !slices.Equal(readyLog(), []bool{false}) {
		t.Fatalf("fresh node: ready %v, reason %q, published %v", n.Ready(), n.NotReadyReason(), readyLog())
	}
	n.SetNotReady("no TLS certificate yet")
	n.SetNotReady("")
	if n.Ready() || len(readyLog()) != 1 {
		t.Fatalf("ready before the floor: %v, published %v", n.Ready(), readyLog())
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 10 s after the floor: %q", n.NotReadyReason())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if time.Now().Before(floor) {
		t.Fatal("ready before the floor")
	}
	for time.Now().Before(deadline) && len(readyLog()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	if !slices.Equal(readyLog(), []bool{false, true}) {
		t.Fatalf("published %v, want [false true]", readyLog())
	}
}
