package client

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/clienttest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
)

var alice = Credentials{Username: clienttest.Username, Password: clienttest.Password}

func TestDialHappyPath(t *testing.T) {
	fc := clienttest.New(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, tc := range []struct {
		name      string
		opts      []Option
		viaHeader bool
	}{
		{name: "query"},
		{name: "subprotocol", opts: []Option{WithTokenInSubprotocol()}, viaHeader: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, resp, err := Dial(ctx, fc.AuthURL(), alice, tc.opts...)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close()
			if resp.NodeID != "node-1" || resp.Token == "" || resp.ExpiresAt.IsZero() {
				t.Fatalf("unexpected response %+v", resp)
			}
			if got := conn.Subprotocol(); got != "wsdirect" {
				t.Errorf("subprotocol = %q, want wsdirect", got)
			}
			if got := fc.Nodes[0].ProtocolToken.Load(); got != tc.viaHeader {
				t.Errorf("token in Sec-WebSocket-Protocol = %v, want %v", got, tc.viaHeader)
			}
			if err := conn.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
				t.Fatal(err)
			}
			_, data, err := conn.ReadMessage()
			if err != nil || string(data) != "ping" {
				t.Fatalf("echo = %q, %v", data, err)
			}
		})
	}
}

func TestDialSendsBearerToken(t *testing.T) {
	fc := clienttest.New(t, 1)
	_, err := Authorize(context.Background(), fc.AuthURL(), Credentials{BearerToken: "jwt-abc"})
	// The fake only knows alice's password, so this is a 401, but the
	// header must have been sent.
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want 401 AuthError", err)
	}
	if got := fc.LastBearer.Load(); got != "Bearer jwt-abc" {
		t.Fatalf("Authorization = %q", got)
	}
}

func TestDialAuthErrorsAreTyped(t *testing.T) {
	fc := clienttest.New(t, 1)
	ctx := context.Background()

	_, _, err := Dial(ctx, fc.AuthURL(), Credentials{Username: "alice", Password: "wrong"})
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %T %v, want *AuthError", err, err)
	}
	if ae.Status != 401 || ae.Code != "invalid_credentials" || ae.Message == "" || ae.Temporary() {
		t.Fatalf("AuthError = %+v", ae)
	}

	fc.AuthStatus.Store(429)
	fc.AuthRetryAfter.Store("3")
	_, _, err = Dial(ctx, fc.AuthURL(), alice)
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != 3*time.Second || !ae.Temporary() {
		t.Fatalf("err = %v (%+v), want 429 with Retry-After 3s", err, ae)
	}

	fc.AuthStatus.Store(503)
	fc.AuthRetryAfter.Store("")
	_, _, err = Dial(ctx, fc.AuthURL(), alice)
	if !errors.As(err, &ae) || ae.Status != 503 || ae.RetryAfter != 0 || ae.Code != "refused" {
		t.Fatalf("err = %v (%+v), want 503", err, ae)
	}
}

func TestDialBadAuthURL(t *testing.T) {
	for _, u := range []string{"ftp://x", "127.0.0.1:8443", "http://", "::"} {
		if _, _, err := Dial(context.Background(), u, alice); err == nil {
			t.Errorf("Dial(%q) succeeded", u)
		}
	}
}

func TestDialNodeRefusalIsTyped(t *testing.T) {
	fc := clienttest.New(t, 1)
	fc.Nodes[0].Status.Store(503)
	fc.Nodes[0].RetryAfter.Store("2")
	_, resp, err := Dial(context.Background(), fc.AuthURL(), alice)
	var ne *NodeError
	if !errors.As(err, &ne) {
		t.Fatalf("err = %T %v, want *NodeError", err, err)
	}
	if ne.Status != 503 || ne.Code != "node_full" || ne.RetryAfter != 2*time.Second {
		t.Fatalf("NodeError = %+v", ne)
	}
	if resp == nil || resp.NodeID != "node-1" {
		t.Fatalf("resp = %+v, want the assignment that was refused", resp)
	}
}

func TestDialNodeTokenIsSingleUse(t *testing.T) {
	fc := clienttest.New(t, 1)
	ctx := context.Background()
	resp, err := Authorize(ctx, fc.AuthURL(), alice)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := DialNode(ctx, resp)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	_, err = DialNode(ctx, resp)
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Status != 403 || ne.Code != "replayed" {
		t.Fatalf("second DialNode: %v, want 403 replayed", err)
	}
}

func TestDialNodeUnreachable(t *testing.T) {
	fc := clienttest.New(t, 1)
	resp, err := Authorize(context.Background(), fc.AuthURL(), alice)
	if err != nil {
		t.Fatal(err)
	}
	fc.Nodes[0].Server.Close()
	_, err = DialNode(context.Background(), resp)
	var ne *NodeError
	if err == nil || errors.As(err, &ne) {
		t.Fatalf("err = %v, want a transport error", err)
	}
	if tok := resp.Token; len(tok) > 20 && strings.Contains(err.Error(), tok) {
		t.Fatalf("error leaks the token: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:00:10 GMT": 10 * time.Second,
		"Wed, 31 Dec 2025 00:00:10 GMT": 0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestDialTLS: auth on https:// and a node on wss:// with a certificate
// from a private CA. A client given the CA file connects and echoes; the
// default client, which does not trust the CA, fails at once with a
// certificate error from auth, and so does a node dial.
func TestDialTLS(t *testing.T) {
	ca, err := testca.New("client test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	fc := clienttest.NewTLS(t, 1, cert)
	if !strings.HasPrefix(fc.AuthURL(), "https://") {
		t.Fatalf("auth URL %s", fc.AuthURL())
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WriteRoot(caFile); err != nil {
		t.Fatal(err)
	}
	pool, err := LoadRootCAs(caFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := Dial(ctx, fc.AuthURL(), alice, WithRootCAs(pool))
	if err != nil {
		t.Fatalf("Dial with the CA: %v", err)
	}
	if !strings.HasPrefix(resp.URL, "wss://") {
		t.Fatalf("node URL %s", resp.URL)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte("over tls")); err != nil {
		t.Fatal(err)
	}
	if _, data, err := conn.ReadMessage(); err != nil || string(data) != "over tls" {
		t.Fatalf("echo = %q, %v", data, err)
	}
	conn.Close()

	var unknown x509.UnknownAuthorityError
	start := time.Now()
	if _, _, err := Dial(ctx, fc.AuthURL(), alice); !errors.As(err, &unknown) {
		t.Fatalf("Dial without the CA: %v, want x509.UnknownAuthorityError", err)
	}
	// The node alone: a token from an auth request made with the CA, a
	// dial without it.
	resp, err = Authorize(ctx, fc.AuthURL(), alice, WithRootCAs(pool))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DialNode(ctx, resp); !errors.As(err, &unknown) {
		t.Fatalf("DialNode without the CA: %v, want x509.UnknownAuthorityError", err)
	}
	// The error types say certificate failures, not timeouts; this only
	// catches a hang, generously for a loaded machine.
	if took := time.Since(start); took > time.Minute {
		t.Errorf("certificate failures took %v", took)
	}
	if _, err := LoadRootCAs(filepath.Join(t.TempDir(), "none.pem")); err == nil {
		t.Error("a missing CA file loaded")
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	_ = os.WriteFile(empty, []byte("not pem"), 0o644)
	if _, err := LoadRootCAs(empty); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a file without certificates: %v", err)
	}
}
