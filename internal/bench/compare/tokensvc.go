package compare

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// TokenServiceConfig configures a TokenService. Start from
// DefaultTokenServiceConfig; StartTokenService rejects invalid fields.
type TokenServiceConfig struct {
	// SigningKey is the auth service's private key (the cluster's
	// signing.key), so nodes accept the tokens with the keys they have.
	SigningKey ed25519.PrivateKey
	// Audience is the token audience every node behind the balancer
	// accepts (their -token-audience, PoolAudience in the harness): the
	// token must be good on whichever node HAProxy picks.
	Audience string
	// WSURL is where clients connect, e.g. "ws://127.0.1.30:40000/ws" or
	// "wss://..." (the HAProxy frontend).
	WSURL string
	// NodeID is what the answer names as the node. Required.
	NodeID string
	// Authenticator checks the credentials. The harness passes auth's own
	// users-file backend on the cluster's users file, so credentials cost
	// the same (bcrypt, then auth's credential cache) on every path.
	Authenticator authsvc.Authenticator
	// TTL of minted tokens. Must be > 0.
	TTL time.Duration
	// TLS, when set, serves https:// with it (like wsdirect-auth with
	// -tls); nil serves http://.
	TLS *tls.Config
}

// DefaultTokenServiceConfig returns the defaults; the caller sets the key,
// the audiences, WSURL and the Authenticator.
func DefaultTokenServiceConfig() TokenServiceConfig {
	return TokenServiceConfig{
		// The balancer, not a node, is what clients are sent to.
		NodeID: "haproxy",
		// The auth service's token lifetime, so tokens cost the same.
		TTL: token.DefaultTTL,
	}
}

// TokenService is the HAProxy paths' stand-in for wsdirect-auth: it serves
// POST /v1/connect (same request and answer as auth, so the same clients
// and the same loadtest code drive it), checks the credentials, and answers
// with the balancer's URL and a token for any node behind it. It picks no
// node: that is HAProxy's job on these paths.
type TokenService struct {
	cfg    TokenServiceConfig
	signer *token.Signer
	ln     net.Listener
	srv    *http.Server
}

// StartTokenService listens on addr (host:port, port 0 for any) and serves.
func StartTokenService(addr string, cfg TokenServiceConfig) (*TokenService, error) {
	switch {
	case len(cfg.SigningKey) != ed25519.PrivateKeySize:
		return nil, errors.New("benchcompare: token service needs the Ed25519 signing key")
	case cfg.Audience == "":
		return nil, errors.New("benchcompare: token service needs the nodes' shared audience")
	case cfg.WSURL == "":
		return nil, errors.New("benchcompare: token service needs the balancer's ws:// or wss:// URL")
	case cfg.Authenticator == nil:
		return nil, errors.New("benchcompare: token service needs an authenticator")
	case cfg.NodeID == "":
		return nil, errors.New("benchcompare: token service NodeID is required")
	case cfg.TTL <= 0:
		return nil, fmt.Errorf("benchcompare: token service TTL must be > 0, got %s", cfg.TTL)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("benchcompare: token service: %w", err)
	}
	ts := &TokenService{cfg: cfg, signer: token.NewSigner(cfg.SigningKey).WithTTL(cfg.TTL), ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc(wire.ConnectPath, ts.connect)
	ts.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveLn := ln
	if cfg.TLS != nil {
		serveLn = tls.NewListener(ln, cfg.TLS)
	}
	go func() { _ = ts.srv.Serve(serveLn) }()
	return ts, nil
}

// URL is the service's base URL, to use as a client's auth URL.
func (ts *TokenService) URL() string {
	if ts.cfg.TLS != nil {
		return "https://" + ts.ln.Addr().String()
	}
	return "http://" + ts.ln.Addr().String()
}

// Close stops the service.
func (ts *TokenService) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return ts.srv.Shutdown(ctx)
}

func (ts *TokenService) connect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST only")
		return
	}
	var req wire.ConnectRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "body must be JSON credentials")
		return
	}
	user, err := ts.cfg.Authenticator.Authenticate(r.Context(), r, req)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "unauthorized", "bad credentials")
		return
	}
	raw, exp, err := ts.mint(user)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(wire.ConnectResponse{URL: ts.cfg.WSURL, Token: raw, NodeID: ts.cfg.NodeID, ExpiresAt: exp})
}

// mint signs a token exactly as auth does (the same token.Signer), with the
// nodes' shared audience instead of one node's name.
func (ts *TokenService) mint(user string) (string, time.Time, error) {
	return ts.signer.Mint(user, ts.cfg.Audience)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wire.Error{Code: code, Message: msg})
}
