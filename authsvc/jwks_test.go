package authsvc

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// jwksServer serves a JWK Set holding pub under kid.
func jwksServer(t *testing.T, kid string, pub ed25519.PublicKey) *httptest.Server {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestJWKS(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	srv := jwksServer(t, "k1", pub)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, err := NewJWKS(ctx, srv.URL, "https://idp.example", "wsdirect")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mint := func(key ed25519.PrivateKey, kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "https://idp.example", "aud": "wsdirect", "sub": "alice",
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	hmac, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString([]byte(pub))
	for _, tc := range []struct {
		name, header string
		ok           bool
	}{
		{"valid", "Bearer " + mint(priv, "k1", claims(nil)), true},
		{"lowercase scheme", "bearer " + mint(priv, "k1", claims(nil)), true},
		{"wrong iss", "Bearer " + mint(priv, "k1", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil" })), false},
		{"wrong aud", "Bearer " + mint(priv, "k1", claims(func(c jwt.MapClaims) { c["aud"] = "other-app" })), false},
		{"expired", "Bearer " + mint(priv, "k1", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), false},
		{"no exp", "Bearer " + mint(priv, "k1", claims(func(c jwt.MapClaims) { delete(c, "exp") })), false},
		{"no sub", "Bearer " + mint(priv, "k1", claims(func(c jwt.MapClaims) { delete(c, "sub") })), false},
		{"wrong key", "Bearer " + mint(otherPriv, "k1", claims(nil)), false},
		{"unknown kid", "Bearer " + mint(otherPriv, "k2", claims(nil)), false},
		{"hmac with public key", "Bearer " + hmac, false},
		{"no header", "", false},
		{"basic", "Basic YWxpY2U6cHc=", false},
		{"garbage", "Bearer not.a.jwt", false},
	} {
		r := httptest.NewRequest(http.MethodPost, wire.ConnectPath, nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		user, err := j.Authenticate(ctx, r, wire.ConnectRequest{Username: "mallory"})
		if tc.ok && (err != nil || user != "alice") {
			t.Errorf("%s: got %q, %v; want alice", tc.name, user, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: got %q, %v; want ErrInvalidCredentials", tc.name, user, err)
		}
	}
}

func TestNewJWKSErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	srv := jwksServer(t, "k1", pub)
	if _, err := NewJWKS(ctx, srv.URL, "", "aud"); err == nil {
		t.Error("missing issuer: no error")
	}
	if _, err := NewJWKS(ctx, srv.URL, "iss", ""); err == nil {
		t.Error("missing audience: no error")
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	if _, err := NewJWKS(ctx, dead.URL, "iss", "aud"); err == nil {
		t.Error("JWKS answering 404: no error")
	}
}
