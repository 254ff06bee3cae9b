package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// TestTokenRejections sends every kind of bad token over real HTTP, in the
// query and in Sec-WebSocket-Protocol, and checks the status, the JSON
// reason and the per-reason metric. None may be accepted.
func TestTokenRejections(t *testing.T) {
	f := newFixture(t, nil)
	_, otherPriv, _ := token.GenerateKey()
	outsider := token.NewSigner(otherPriv) // a key outside the trusted set

	mintWith := func(s *token.Signer, node string) string {
		tok, _, err := s.Mint("mallory", node)
		if err != nil {
			t.Fatal(err)
		}
		f.remember(tok)
		return tok
	}
	cases := []struct {
		name   string
		tok    func() string
		status int
		reason token.Reason
	}{
		{"bad signature", func() string {
			parts := strings.Split(f.mint("u"), ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[7] ^= 0x55
			parts[2] = base64.RawURLEncoding.EncodeToString(sig)
			return strings.Join(parts, ".")
		}, 401, token.ReasonBadSignature},
		{"unknown kid", func() string { return mintWith(outsider, testNode) }, 401, token.ReasonUnknownKey},
		{"outside key with a trusted kid", func() string {
			claims := jwt.RegisteredClaims{Subject: "u", Audience: jwt.ClaimStrings{testNode}, ID: "0123456789abcdef",
				ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute)), IssuedAt: jwt.NewNumericDate(time.Now())}
			tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
			tk.Header["kid"] = f.signer.KeyID()
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			raw, err := tk.SignedString(priv)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}, 401, token.ReasonBadSignature},
		{"wrong audience", func() string { return mintWith(f.signer, "another-node") }, 403, token.ReasonWrongAudience},
		{"expired", func() string {
			return mintWith(f.signer.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }), testNode)
		}, 401, token.ReasonExpired},
		{"not yet valid", func() string {
			return mintWith(f.signer.WithClock(func() time.Time { return time.Now().Add(time.Hour) }), testNode)
		}, 401, token.ReasonNotYetValid},
		{"malformed", func() string { return "not.a.jwt" }, 401, token.ReasonMalformed},
		{"oversized", func() string { return strings.Repeat("a", token.MaxTokenBytes+1) }, 401, token.ReasonOversized},
		{"missing", func() string { return "" }, 401, token.ReasonMissing},
	}
	for _, via := range []string{"query", "subprotocol"} {
		for _, tc := range cases {
			t.Run(via+"/"+tc.name, func(t *testing.T) {
				if via == "subprotocol" && tc.reason == token.ReasonMissing {
					t.Skip("an empty protocol entry is the same as no token")
				}
				before := f.metric("wsdirect_node_rejects_total", string(tc.reason))
				ws, resp, we, err := f.dial(tc.tok(), via == "subprotocol")
				if err == nil {
					ws.Close()
					t.Fatal("bad token accepted")
				}
				if resp == nil || resp.StatusCode != tc.status {
					t.Fatalf("err %v, resp %+v; want status %d", err, resp, tc.status)
				}
				if we == nil || we.Code != string(tc.reason) {
					t.Fatalf("JSON error = %+v, want code %q", we, tc.reason)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Fatalf("Content-Type = %q", ct)
				}
				if got := f.metric("wsdirect_node_rejects_total", string(tc.reason)); got != before+1 {
					t.Fatalf("rejects{%s} = %v, want %v", tc.reason, got, before+1)
				}
			})
		}
	}
	if f.node.Conns() != 0 || f.metric("wsdirect_node_accepts_total", "") != 0 {
		t.Fatalf("a bad token got through: conns %d", f.node.Conns())
	}
	if f.node.slots.Load() != 0 {
		t.Fatalf("rejections leaked %d slots", f.node.slots.Load())
	}
}

func TestReplayedToken(t *testing.T) {
	for _, viaProtocol := range []bool{false, true} {
		f := newFixture(t, nil)
		tok := f.mint("alice")
		ws, _, we, err := f.dial(tok, viaProtocol)
		if err != nil {
			t.Fatalf("first use: %v %+v", err, we)
		}
		ws.Close()
		_, resp, we, err := f.dial(tok, viaProtocol)
		if err == nil {
			t.Fatal("replayed token accepted")
		}
		if resp.StatusCode != http.StatusForbidden || we.Code != string(token.ReasonReplayed) {
			t.Fatalf("status %d, body %+v", resp.StatusCode, we)
		}
		if got := f.metric("wsdirect_node_rejects_total", string(token.ReasonReplayed)); got != 1 {
			t.Fatalf("rejects{replayed} = %v", got)
		}
	}
}

// TestTokenViaSubprotocol: a token in Sec-WebSocket-Protocol works, and the
// response selects "wsdirect" (browsers fail a handshake that selects none
// of the offered protocols).
func TestTokenViaSubprotocol(t *testing.T) {
	f := newFixture(t, nil)
	ws, _, we, err := f.dial(f.mint("bob"), true)
	if err != nil {
		t.Fatalf("%v %+v", err, we)
	}
	defer ws.Close()
	if ws.Subprotocol() != wire.Subprotocol {
		t.Fatalf("selected subprotocol %q, want %q", ws.Subprotocol(), wire.Subprotocol)
	}
	if err := ws.WriteMessage(1, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "hi" {
		t.Fatalf("echo: %q %v", msg, err)
	}
}

// TestKeyReload: SetKeys swaps the trusted keys while serving.
func TestKeyReload(t *testing.T) {
	f := newFixture(t, nil)
	_, priv, _ := token.GenerateKey()
	next := token.NewSigner(priv)
	tok, _, _ := next.Mint("u", testNode)
	f.remember(tok)
	if _, resp, _, err := f.dial(tok, false); err == nil || resp.StatusCode != 401 {
		t.Fatal("token of an untrusted key accepted")
	}
	ks := token.KeySet{}
	ks.Add(f.signer.PublicKey())
	ks.Add(next.PublicKey())
	f.node.verifier.SetKeys(ks)
	tok, _, _ = next.Mint("u", testNode)
	f.remember(tok)
	ws, _, we, err := f.dial(tok, false)
	if err != nil {
		t.Fatalf("after reload: %v %+v", err, we)
	}
	ws.Close()
}
