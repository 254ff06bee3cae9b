package authsvc

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

func TestNewBalancer(t *testing.T) {
	for raw, want := range map[string]string{
		"wss://lb.example.com/ws":      "wss://lb.example.com/ws",
		"wss://lb.example.com:443/ws":  "wss://lb.example.com/ws",
		"wss://lb.example.com:8443/ws": "wss://lb.example.com:8443/ws",
		"ws://127.0.1.30:40000/ws":     "ws://127.0.1.30:40000/ws",
		"wss://[2001:db8::1]/ws":       "wss://[2001:db8::1]/ws",
	} {
		b, err := NewBalancer(raw, "pool")
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if b.URL() != want || b.Audience() != "pool" {
			t.Errorf("%s: URL %q audience %q, want %q and pool", raw, b.URL(), b.Audience(), want)
		}
	}
	for raw, why := range map[string]string{
		"https://lb.example.com/ws":      "scheme must be ws or wss",
		"wss://lb.example.com/":          "path the nodes serve",
		"wss://lb.example.com/other":     "path the nodes serve",
		"wss://lb.example.com/ws?x=1":    "path the nodes serve",
		"wss://u:p@lb.example.com/ws":    "path the nodes serve",
		"wss:///ws":                      "no host",
		"wss://lb.example.com:0/ws":      "bad port",
		"wss://lb.example.com:70000/ws":  "bad port",
		"wss://lb.example.com:443x/ws":   "balancer URL",
		"lb.example.com/ws":              "scheme must be ws or wss",
		"wss://lb.example.com/ws#frag":   "path the nodes serve",
		"wss://lb.example.com:https/ws":  "balancer URL",
		"wss://%zz/ws":                   "balancer URL",
		"ws://lb.example.com:99999/ws":   "bad port",
		"wss://lb.example.com/ws/../ws2": "path the nodes serve",
	} {
		if _, err := NewBalancer(raw, "pool"); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: error %v, want one saying %q", raw, err, why)
		}
	}
	if _, err := NewBalancer("wss://lb.example.com/ws", ""); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("no audience: %v", err)
	}
}

// TestConnectThroughBalancer: with a Balancer, every answer names the
// balancer's URL and a token for the shared audience, which no node's own
// audience accepts; a cluster with no node that has room still answers 503.
func TestConnectThroughBalancer(t *testing.T) {
	b, err := NewBalancer("wss://127.0.1.30:40000/ws", "pool")
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *Config) { c.Picker = b })
	keys := token.KeySet{}
	keys.Add(ts.signer.PublicKey())
	for i := 0; i < 5; i++ {
		resp, data := ts.connect(t, nil, goodLogin, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, data)
		}
		var cr wire.ConnectResponse
		if err := json.Unmarshal(data, &cr); err != nil {
			t.Fatal(err)
		}
		if cr.URL != "wss://127.0.1.30:40000/ws" || cr.NodeID != "pool" {
			t.Fatalf("answer names %q at %q, want the balancer", cr.NodeID, cr.URL)
		}
		if _, err := token.NewVerifier("pool", keys).Verify(cr.Token); err != nil {
			t.Fatalf("token does not verify for the shared audience: %v", err)
		}
		if _, err := token.NewVerifier("node-a", keys).Verify(cr.Token); token.ReasonOf(err) != token.ReasonWrongAudience {
			t.Fatalf("token accepted for a node's own audience: %v", err)
		}
	}
	full := member("node-a", 100, 100)
	full.Addr, full.Port = "127.0.0.1", 9001
	draining := member("node-b", 0, 100)
	draining.Addr, draining.Port, draining.Draining = "127.0.0.1", 9002, true
	ts.view.set(full, draining)
	resp, data := ts.connect(t, nil, goodLogin, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || errCode(t, data) != ResultNoCapacity {
		t.Fatalf("no node with room: status %d %s, want 503 %s", resp.StatusCode, data, ResultNoCapacity)
	}
}

// TestUserTokensPool: a token for the balancer's audience may be on any
// node, so it stops being outstanding once any node's count is heard
// Settle after it, and not merely because no node carries its name.
func TestUserTokensPool(t *testing.T) {
	const ttl, settle = 30 * time.Second, time.Second
	u := newUserTokens(2, ttl, settle, 100)
	u.pool = "pool"
	t0 := time.Unix(1_000_000, 0)
	nodes := []cluster.Member{{Name: "n1", UpdatedAt: t0}, {Name: "n2", UpdatedAt: t0}}
	for i := 0; i < 2; i++ {
		tk, ok, _ := u.reserve("alice", nodes, t0)
		if !ok {
			t.Fatalf("reserve %d refused", i)
		}
		u.assign(tk, "pool")
	}
	if _, ok, _ := u.reserve("alice", nodes, t0.Add(500*time.Millisecond)); ok {
		t.Fatal("a third token within the limit of 2, before any count could include the first two")
	}
	nodes[1].UpdatedAt = t0.Add(settle + 100*time.Millisecond)
	if _, ok, _ := u.reserve("alice", nodes, t0.Add(settle+200*time.Millisecond)); !ok {
		t.Fatal("still refused after a node's count was heard past Settle")
	}
}
