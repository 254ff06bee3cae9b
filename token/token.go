package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"
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

// Claims are what a connection token says. On the wire they are exactly
// the JSON object
//
//	{"sub":"alice","aud":"node-1","exp":1800000030,"nbf":1800000000,"iat":1800000000.123,"jti":"<32 hex digits>"}
//
// followed, in the token of a client moved by a rebalance, by "rb":true,
// with the header {"alg":"EdDSA","kid":"<key id>","typ":"JWT"}. aud is one
// string, never an array: a token names one node. exp and nbf are whole
// seconds; iat carries milliseconds, so that a node can refuse every token
// issued before it started without refusing the ones issued just after.
type Claims struct {
	// Subject (sub) is the authenticated user.
	Subject string
	// Audience (aud) is the node the token is for.
	Audience string
	// ID (jti) is 128 random bits in hex; the replay cache keys on it.
	ID string
	// IssuedAt (iat) is when the token was minted, to the millisecond.
	IssuedAt time.Time
	// NotBefore (nbf) is IssuedAt rounded down to the second.
	NotBefore time.Time
	// ExpiresAt (exp) is NotBefore plus the signer's TTL, in whole seconds.
	ExpiresAt time.Time
	// Rebalanced (rb) marks the token of a client that a node closed to
	// rebalance the cluster and that auth placed anew (MintRebalanced). The
	// node it connects to does not move it again for a while
	// (docs/design.md section 15).
	Rebalanced bool
}

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
	// ReasonBeforeStart: issued before the node started (see
	// Verifier.RejectIssuedBefore); it may have been used already.
	ReasonBeforeStart Reason = "issued_before_start"
)

// Reasons lists every rejection reason, for pre-registering metrics.
var Reasons = []Reason{ReasonMalformed, ReasonOversized, ReasonBadSignature, ReasonUnknownKey,
	ReasonWrongAudience, ReasonExpired, ReasonNotYetValid, ReasonReplayed, ReasonMissing, ReasonBeforeStart}

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
// The token is exactly the format Claims describes; a user name that is not
// valid UTF-8 cannot be minted.
func (s *Signer) Mint(user, node string) (string, time.Time, error) {
	return s.mint(user, node, false)
}

// MintRebalanced is Mint for a client that a node moved to rebalance the
// cluster: the token carries Claims.Rebalanced.
func (s *Signer) MintRebalanced(user, node string) (string, time.Time, error) {
	return s.mint(user, node, true)
}

func (s *Signer) mint(user, node string, rebalanced bool) (string, time.Time, error) {
	if user == "" || node == "" {
		return "", time.Time{}, errors.New("token: user and node must not be empty")
	}
	var id [16]byte // 128-bit jti
	if _, err := s.rand(id[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("token: jti: %w", err)
	}
	now := s.now()
	nbf := now.Truncate(time.Second)
	exp := nbf.Add(s.ttl).Truncate(time.Second)
	c := wireClaims{
		Sub: user,
		Aud: node,
		Exp: exp.Unix(),
		Nbf: nbf.Unix(),
		Iat: float64(now.UnixMilli()) / 1000,
		Jti: hex.EncodeToString(id[:]),
		Rb:  trueOnly(rebalanced),
	}
	signed, err := sign(s.key, header{Alg: algEdDSA, Kid: s.kid, Typ: typJWT}, c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: %w", err)
	}
	return signed, exp, nil
}
