package token

import (
	"crypto/ed25519"
	"errors"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var errUnknownKID = errors.New("unknown key id")

// Verifier checks tokens for one node, offline.
type Verifier struct {
	audience string
	keys     atomic.Pointer[KeySet]
	replay   *ReplayCache
	now      func() time.Time
	leeway   time.Duration
}

// NewVerifier returns a Verifier that accepts tokens for node signed by any
// key in keys, each at most once.
func NewVerifier(node string, keys KeySet) *Verifier {
	v := &Verifier{
		audience: node,
		replay:   NewReplayCache(),
		now:      time.Now,
		leeway:   DefaultLeeway,
	}
	v.SetKeys(keys)
	return v
}

// WithClock makes v read time from now (for tests). Call before use.
func (v *Verifier) WithClock(now func() time.Time) *Verifier {
	v.now = now
	v.replay.now = now
	return v
}

// WithLeeway sets the clock-skew tolerance. Call before use.
func (v *Verifier) WithLeeway(d time.Duration) *Verifier {
	v.leeway = d
	return v
}

// SetKeys replaces the trusted keys; safe while verifying, so a node can
// reload keys on SIGHUP during rotation.
func (v *Verifier) SetKeys(keys KeySet) {
	cp := make(KeySet, len(keys))
	for k, pub := range keys {
		cp[k] = pub
	}
	v.keys.Store(&cp)
}

// Verify checks raw and, when it is valid, consumes its jti so it cannot be
// used again. The returned error is always an *Error.
func (v *Verifier) Verify(raw string) (*Claims, error) {
	claims, err := v.Check(raw)
	if err != nil {
		return nil, err
	}
	if !v.replay.Add(claims.ID, claims.ExpiresAt.Time.Add(v.leeway)) {
		return nil, &Error{Reason: ReasonReplayed}
	}
	return claims, nil
}

// Check verifies everything but single use. Verify is what a node calls.
func (v *Verifier) Check(raw string) (*Claims, error) {
	if raw == "" {
		return nil, &Error{Reason: ReasonMissing}
	}
	if len(raw) > MaxTokenBytes {
		return nil, &Error{Reason: ReasonOversized}
	}
	keys := *v.keys.Load()
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithAudience(v.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	)
	claims := &Claims{}
	_, err := p.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, ok := keys[kid]
		if !ok {
			return nil, errUnknownKID
		}
		return ed25519.PublicKey(pub), nil
	})
	if err != nil {
		return nil, classify(err)
	}
	if claims.ID == "" || claims.Subject == "" {
		return nil, &Error{Reason: ReasonMalformed, Err: errors.New("missing jti or sub")}
	}
	return claims, nil
}

// classify maps jwt's errors to a Reason. Order matters: jwt joins several
// errors, and a bad signature must win over claim errors because claims of
// an unsigned token mean nothing.
func classify(err error) *Error {
	switch {
	case errors.Is(err, errUnknownKID):
		return &Error{Reason: ReasonUnknownKey, Err: err}
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenUnverifiable):
		return &Error{Reason: ReasonMalformed, Err: err}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrEd25519Verification):
		return &Error{Reason: ReasonBadSignature, Err: err}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return &Error{Reason: ReasonWrongAudience, Err: err}
	case errors.Is(err, jwt.ErrTokenExpired):
		return &Error{Reason: ReasonExpired, Err: err}
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return &Error{Reason: ReasonNotYetValid, Err: err}
	}
	return &Error{Reason: ReasonMalformed, Err: err}
}
