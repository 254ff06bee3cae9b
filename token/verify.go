package token

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

var errUnknownKID = errors.New("unknown key id")

// Verifier checks tokens for one node, offline.
type Verifier struct {
	audience string
	keys     atomic.Pointer[verifyKeys]
	replay   *ReplayCache
	now      func() time.Time
	leeway   time.Duration
	// issuedAfter is the earliest iat accepted (RejectIssuedBefore); zero
	// means no such check.
	issuedAfter time.Time
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

// Leeway is the clock-skew tolerance in force.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// RejectIssuedBefore makes v refuse every token minted before t (by its
// iat), with ReasonBeforeStart. Call before use.
//
// This is what keeps tokens single use across a node restart: the replay
// cache lives in memory and a new process starts with an empty one, so a
// node passes the time it started, plus the clock skew it tolerates (a token
// minted just before the restart on an auth host whose clock runs ahead
// carries an iat up to the skew later). Tokens minted within that skew after
// the start are refused too; a node (package node) reports itself not ready
// until the floor has passed, so auth sends it no client meanwhile, and a
// client that still gets 401 (clocks further apart) fetches a new token.
//
// Why not persist the replay cache instead: it would cost a synchronous disk
// write per connection on the connect path, and a crash loses whatever was
// not yet on disk, which is exactly the case it is for. The iat rule costs
// nothing, holds across crashes and relies only on the clock agreement that
// exp already relies on.
//
// t is taken to the millisecond, the precision of iat: a token minted in
// the millisecond t falls in is accepted. Compared at a finer precision, a
// token minted a moment after t but within its millisecond carried an iat
// before t and was refused (node tests that mint right after starting a
// node failed that way about one run in three).
func (v *Verifier) RejectIssuedBefore(t time.Time) *Verifier {
	v.issuedAfter = t.Truncate(time.Millisecond)
	return v
}

// IssuedAfter is the earliest iat v accepts; zero when RejectIssuedBefore
// was not called.
func (v *Verifier) IssuedAfter() time.Time { return v.issuedAfter }

// verifyKeys maps a kid to its public key in the form the signature check
// uses: decompressed once, with its multiples precomputed, instead of on
// every token. A key that is not a point on the curve maps to nil: no
// signature verifies under it.
type verifyKeys map[string]*voi.ExpandedPublicKey

// stdlibCompatible makes a signature verify exactly when crypto/ed25519's
// Verify accepts it (cofactorless equation, canonical S, R compared by its
// encoding), so a node accepts the same tokens whatever library checks them.
var stdlibCompatible = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// verifySignature reports whether sig is pub's signature of input.
// curve25519-voi rather than crypto/ed25519: with the key expanded once it
// takes about 60% of the standard library's time, and the signature check
// is most of what a node spends accepting a connection (BenchmarkVerify,
// BenchmarkAcceptCPU in package node).
func verifySignature(pub *voi.ExpandedPublicKey, input string, sig []byte) bool {
	return pub != nil && voi.VerifyExpandedWithOptions(pub, []byte(input), sig, stdlibCompatible)
}

// SetKeys replaces the trusted keys; safe while verifying, so a node can
// reload keys on SIGHUP during rotation.
func (v *Verifier) SetKeys(keys KeySet) {
	cp := make(verifyKeys, len(keys))
	for k, pub := range keys {
		xp, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
		if err != nil {
			xp = nil
		}
		cp[k] = xp
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
	if !v.replay.Add(claims.ID, claims.ExpiresAt.Add(v.leeway)) {
		return nil, &Error{Reason: ReasonReplayed}
	}
	return claims, nil
}

// Sweep forgets the jtis of expired tokens at once; see ReplayCache.Sweep.
// A node calls it now and then, so that what a burst of connects left
// behind goes even if no token comes after it.
func (v *Verifier) Sweep() { v.replay.Sweep() }

// Check verifies everything but single use. Verify is what a node calls.
//
// The order matters: the signature is checked before the claims are even
// parsed, because the claims of a token that is not ours mean nothing, and a
// bad signature must be reported as such.
func (v *Verifier) Check(raw string) (*Claims, error) {
	if raw == "" {
		return nil, &Error{Reason: ReasonMissing}
	}
	if len(raw) > MaxTokenBytes {
		return nil, &Error{Reason: ReasonOversized}
	}
	p, perr := split(raw)
	if perr != nil {
		return nil, perr
	}
	keys := *v.keys.Load()
	pub, ok := keys[p.header.Kid]
	if !ok {
		return nil, &Error{Reason: ReasonUnknownKey, Err: errUnknownKID}
	}
	if !verifySignature(pub, p.input, p.sig) {
		return nil, &Error{Reason: ReasonBadSignature, Err: errors.New("ed25519 verification failed")}
	}
	c, cerr := decodeClaims(p.claims)
	if cerr != nil {
		return nil, cerr
	}
	if c.Audience != v.audience {
		return nil, &Error{Reason: ReasonWrongAudience, Err: fmt.Errorf("token is for %q", c.Audience)}
	}
	now := v.now()
	switch {
	case now.After(c.ExpiresAt.Add(v.leeway)):
		return nil, &Error{Reason: ReasonExpired, Err: fmt.Errorf("expired at %s", c.ExpiresAt.UTC().Format(time.RFC3339))}
	case now.Add(v.leeway).Before(c.NotBefore), now.Add(v.leeway).Before(c.IssuedAt):
		return nil, &Error{Reason: ReasonNotYetValid, Err: fmt.Errorf("not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))}
	case c.IssuedAt.Before(v.issuedAfter):
		return nil, &Error{Reason: ReasonBeforeStart, Err: fmt.Errorf("issued at %s, before this node accepted tokens (%s)",
			c.IssuedAt.UTC().Format(time.RFC3339Nano), v.issuedAfter.UTC().Format(time.RFC3339Nano))}
	}
	return c, nil
}
