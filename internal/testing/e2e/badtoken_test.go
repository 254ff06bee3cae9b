package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// TestBadTokens presents every kind of bad token to a real node of a running
// cluster, wired the way production wires it, and checks that none is
// accepted and each gets the right status, JSON reason and metric.
func TestBadTokens(t *testing.T) {
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes = 2 })
	a, b := c.Node(0), c.Node(1)
	now := time.Now()

	mint := func(s *token.Signer, node string) string {
		t.Helper()
		tok, _, err := s.Mint(testcluster.User, node)
		if err != nil {
			t.Fatalf("mint: %v", err)
		}
		return tok
	}
	// handMade signs claims with key under a kid of our choosing.
	handMade := func(kid string, claims jwt.RegisteredClaims) string {
		t.Helper()
		tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tk.Header["kid"] = kid
		s, err := tk.SignedString(c.SigningKey)
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		return s
	}
	claimsFor := func(node string) jwt.RegisteredClaims {
		return jwt.RegisteredClaims{
			Subject: testcluster.User, Audience: jwt.ClaimStrings{node}, ID: "hand-made-" + node,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
		}
	}
	_, otherKey, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	untrusted := token.NewSigner(otherKey)
	// A token from the untrusted key that claims the trusted key's kid.
	forged := func() string {
		tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claimsFor(a.Name))
		tk.Header["kid"] = c.Signer.KeyID()
		s, err := tk.SignedString(otherKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	flipSignature := func(tok string) string {
		parts := strings.Split(tok, ".")
		sig := []byte(parts[2])
		// Change a character in the middle: the last one may only carry
		// padding bits.
		i := len(sig) / 2
		if sig[i] == 'A' {
			sig[i] = 'B'
		} else {
			sig[i] = 'A'
		}
		return parts[0] + "." + parts[1] + "." + string(sig)
	}
	replayed := mint(c.Signer, a.Name)
	if conn, status, _ := presentToken(t, a, replayed); conn == nil {
		t.Fatalf("first use of a fresh token refused with %d", status)
	} else {
		conn.Close()
	}
	noneAlg := func() string {
		tk := jwt.NewWithClaims(jwt.SigningMethodNone, claimsFor(a.Name))
		tk.Header["kid"] = c.Signer.KeyID()
		s, err := tk.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()

	cases := []struct {
		name   string
		token  string
		status int
		reason token.Reason
	}{
		{"bad signature", flipSignature(mint(c.Signer, a.Name)), 401, token.ReasonBadSignature},
		{"unknown kid", handMade("no-such-kid", claimsFor(a.Name)), 401, token.ReasonUnknownKey},
		{"key outside the trusted set", mint(untrusted, a.Name), 401, token.ReasonUnknownKey},
		{"untrusted key under a trusted kid", forged, 401, token.ReasonBadSignature},
		{"wrong aud (node B's token at A)", mint(c.Signer, b.Name), 403, token.ReasonWrongAudience},
		{"expired", mint(c.Signer.WithClock(func() time.Time { return now.Add(-time.Hour) }), a.Name), 401, token.ReasonExpired},
		{"not yet valid", mint(c.Signer.WithClock(func() time.Time { return now.Add(time.Hour) }), a.Name), 401, token.ReasonNotYetValid},
		{"replayed", replayed, 403, token.ReasonReplayed},
		{"malformed", "not.a-jwt", 401, token.ReasonMalformed},
		{"malformed json", "eyJhbGciOiJFZERTQSJ9.e30x.AAAA", 401, token.ReasonMalformed},
		{"alg none", noneAlg, 401, ""},
		{"oversized", strings.Repeat("a", token.MaxTokenBytes+1), 401, token.ReasonOversized},
		{"missing", "", 401, token.ReasonMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := -1.0
			if tc.reason != "" {
				before = counterValue(t, a.Registry, "wsdirect_node_rejects_total", "reason", string(tc.reason))
			}
			conn, status, body := presentToken(t, a, tc.token)
			if conn != nil {
				conn.Close()
				t.Fatalf("token accepted")
			}
			if status != tc.status {
				t.Errorf("status %d, want %d (body %s)", status, tc.status, body)
			}
			var we wire.Error
			if err := json.Unmarshal(body, &we); err != nil {
				t.Fatalf("body %q is not a JSON wire.Error: %v", body, err)
			}
			if tc.reason != "" && we.Code != string(tc.reason) {
				t.Errorf("reason %q, want %q (message %q)", we.Code, tc.reason, we.Message)
			}
			if tc.reason == "" && we.Code == "" {
				t.Errorf("no reason in %s", body)
			}
			if tc.reason != "" {
				after := counterValue(t, a.Registry, "wsdirect_node_rejects_total", "reason", string(tc.reason))
				if after != before+1 {
					t.Errorf("wsdirect_node_rejects_total{reason=%q} went %v -> %v, want +1", tc.reason, before, after)
				}
			}
		})
	}
	if n := a.Conns(); n != 0 {
		t.Errorf("node %s holds %d connections after only bad tokens", a.Name, n)
	}
}

// presentToken opens a WebSocket to node n with raw in the query string and
// returns the connection (nil when refused), the HTTP status and the body.
func presentToken(t *testing.T, n *testcluster.Node, raw string) (*websocket.Conn, int, []byte) {
	t.Helper()
	u := n.URL()
	if raw != "" {
		u += "?" + wire.TokenQueryParam + "=" + url.QueryEscape(raw)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, res, err := d.Dial(u, http.Header{"Sec-WebSocket-Protocol": {wire.Subprotocol}})
	if err == nil {
		return conn, http.StatusSwitchingProtocols, nil
	}
	if res == nil {
		t.Fatalf("dial %s: %v", n.Name, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return nil, res.StatusCode, body
}
