package authsvc

import (
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
)

// TestUserTokensRetryAfter: a user at the limit is told to come back when
// the oldest token's node count can include it (Settle after minting), not
// after the token's lifetime; and room is back once that count is heard.
func TestUserTokensRetryAfter(t *testing.T) {
	const ttl, settle = 30 * time.Second, time.Second
	u := newUserTokens(2, ttl, settle, 100)
	t0 := time.Unix(1_000_000, 0)
	nodes := []cluster.Member{{Name: "n1", UpdatedAt: t0}}
	for i := 0; i < 2; i++ {
		tk, ok, _ := u.reserve("alice", nodes, t0.Add(time.Duration(i)*100*time.Millisecond))
		if !ok {
			t.Fatalf("reserve %d refused", i)
		}
		u.assign(tk, "n1")
	}
	_, ok, wait := u.reserve("alice", nodes, t0.Add(300*time.Millisecond))
	if ok {
		t.Fatal("a third token within the limit of 2")
	}
	if want := settle - 300*time.Millisecond; wait != want {
		t.Fatalf("Retry-After hint %v, want %v (Settle after the oldest token), not the token lifetime", wait, want)
	}
	// n1's count heard after both tokens' Settle: both retire.
	nodes[0].UpdatedAt = t0.Add(settle + 200*time.Millisecond)
	if _, ok, _ := u.reserve("alice", nodes, t0.Add(settle+300*time.Millisecond)); !ok {
		t.Fatal("still refused after the node's count included the tokens")
	}
	// Without counts heard, the hint is never past the expiry.
	v := newUserTokens(1, ttl, 2*ttl, 100)
	tk, _, _ := v.reserve("bob", nodes, t0)
	v.assign(tk, "n1")
	if _, ok, wait := v.reserve("bob", nodes, t0.Add(time.Second)); ok || wait != ttl-time.Second {
		t.Fatalf("settle longer than the lifetime: ok %v, hint %v, want refused and %v", ok, wait, ttl-time.Second)
	}
}
