package compare

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// TestTokenService checks that the HAProxy paths' tokens pass the real
// verifier of every node sharing the pool audience, once per node, are
// refused by a node with its own audience, and that the service checks
// credentials like auth.
func TestTokenService(t *testing.T) {
	pub, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	line, err := authsvc.HashPassword("bench", "secret", 4)
	if err != nil {
		t.Fatal(err)
	}
	usersPath := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(usersPath, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := authsvc.NewUsersFile(usersPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultTokenServiceConfig()
	cfg.SigningKey, cfg.Audience, cfg.Authenticator = priv, PoolAudience, users
	cfg.WSURL = "ws://127.0.1.30:1/ws"
	ts, err := StartTokenService("127.0.1.20:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	keys := token.KeySet{}
	keys.Add(pub)
	ctx := context.Background()

	resp, err := client.Authorize(ctx, ts.URL(), client.Credentials{Username: "bench", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.URL != "ws://127.0.1.30:1/ws" || resp.NodeID != "haproxy" {
		t.Errorf("answer %+v", resp)
	}
	v := token.NewVerifier(PoolAudience, keys)
	for node, v := range map[string]*token.Verifier{"node-1": v, "node-2": token.NewVerifier(PoolAudience, keys)} {
		if c, err := v.Verify(resp.Token); err != nil || c.Subject != "bench" {
			t.Errorf("%s: %v, %+v", node, err, c)
		}
	}
	if _, err := v.Verify(resp.Token); token.ReasonOf(err) != token.ReasonReplayed {
		t.Errorf("second use on node-1: %v, want replayed", err)
	}
	if _, err := token.NewVerifier("node-3", keys).Verify(resp.Token); token.ReasonOf(err) != token.ReasonWrongAudience {
		t.Errorf("node-3 with its own audience: %v, want wrong audience", err)
	}

	_, err = client.Authorize(ctx, ts.URL(), client.Credentials{Username: "bench", Password: "wrong"})
	var ae *client.AuthError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("wrong password: %v", err)
	}
	res, err := http.Get(ts.URL() + "/v1/connect")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %s", res.Status)
	}
	res, err = http.Post(ts.URL()+"/v1/connect", "application/json", bytes.NewBufferString("{"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad body: %s", res.Status)
	}

	for name, mod := range map[string]func(*TokenServiceConfig){
		"no audience": func(c *TokenServiceConfig) { c.Audience = "" },
		"no node id":  func(c *TokenServiceConfig) { c.NodeID = "" },
		"zero ttl":    func(c *TokenServiceConfig) { c.TTL = 0 },
	} {
		c := cfg
		mod(&c)
		if _, err := StartTokenService("127.0.1.20:0", c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
