package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTTL is how long a minted token stays valid. It only has to cover
// the client's trip from auth to the node, and a short life keeps the replay
// cache small.
const DefaultTTL = 30 * time.Second

// MaxTokenBytes bounds the token a node will even try to parse. A real token
// is about 300 bytes; anything far larger is garbage or an attack.
const MaxTokenBytes = 2048

// DefaultLeeway tolerates clock skew between auth and node hosts.
const DefaultLeeway = 2 * time.Second

// Claims are the registered JWT claims a connection token carries: sub
// (user), aud (node id), exp, iat, nbf and jti.
type Claims = jwt.RegisteredClaims

// Reason names why a token was rejected. Nodes count rejections by reason.
type Reason string

// The reasons a Verifier rejects a token.
const (
	ReasonMalformed     Reason = "malformed"
	ReasonOversized     Reason = "oversized"
	ReasonBadSignature  Reason = "bad_signature"
	ReasonUnknownKey    Reason = "unknown_kid"
	ReasonWrongAudience Reason = "wrong_audience"
	ReasonExpired       Reason = "expired"
	ReasonNotYetValid   Reason = "not_yet_valid"
	ReasonReplayed      Reason = "replayed"
	ReasonMissing       Reason = "missing"
)

// Reasons lists every rejection reason, for pre-registering metrics.
var Reasons = []Reason{ReasonMalformed, ReasonOversized, ReasonBadSignature, ReasonUnknownKey,
	ReasonWrongAudience, ReasonExpired, ReasonNotYetValid, ReasonReplayed, ReasonMissing}

// Error is a rejected token.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "token " + string(e.Reason)
	}
	return fmt.Sprintf("token %s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status a node answers with: 401 when the token does not
// authenticate (get a fresh one), 403 when it authenticates but is not
// allowed here (another node's, or already used).
func (e *Error) HTTPStatus() int {
	switch e.Reason {
	case ReasonWrongAudience, ReasonReplayed:
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}

// ReasonOf returns the rejection reason of err, or "" if err is not a token
// Error.
func ReasonOf(err error) Reason {
	var te *Error
	if errors.As(err, &te) {
		return te.Reason
	}
	return ""
}

// Signer mints tokens with one private key.
type Signer struct {
	kid  string
	key  ed25519.PrivateKey
	ttl  time.Duration
	now  func() time.Time
	rand func([]byte) (int, error)
}

// NewSigner returns a Signer for priv with DefaultTTL. Its kid is derived
// from the public key.
func NewSigner(priv ed25519.PrivateKey) *Signer {
	return &Signer{
		kid:  KeyID(priv.Public().(ed25519.PublicKey)),
		key:  priv,
		ttl:  DefaultTTL,
		now:  time.Now,
		rand: rand.Read,
	}
}

// WithTTL returns a copy of s that mints tokens valid for ttl.
func (s *Signer) WithTTL(ttl time.Duration) *Signer {
	c := *s
	c.ttl = ttl
	return &c
}

// WithClock returns a copy of s that reads time from now (for tests).
func (s *Signer) WithClock(now func() time.Time) *Signer {
	c := *s
	c.now = now
	return &c
}

// KeyID is the kid the Signer puts in every token header.
func (s *Signer) KeyID() string { return s.kid }

// TTL is how long minted tokens stay valid.
func (s *Signer) TTL() time.Duration { return s.ttl }

// PublicKey is the key nodes need to verify this Signer's tokens.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Mint returns a token for user to connect to node, and when it expires.
func (s *Signer) Mint(user, node string) (string, time.Time, error) {
	if user == "" || node == "" {
		return "", time.Time{}, errors.New("token: user and node must not be empty")
	}
	var id [16]byte // 128-bit jti
	if _, err := s.rand(id[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("token: jti: %w", err)
	}
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.ttl)
	claims := Claims{
		Subject:   user,
		Audience:  jwt.ClaimStrings{node},
		ExpiresAt: jwt.NewNumericDate(exp),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ID:        hex.EncodeToString(id[:]),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: sign: %w", err)
	}
	return signed, exp, nil
}
