package authsvc

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrRateLimited means the client's address has no failed-login budget left
// for one more credential check. The server answers 429 with Retry-After.
var ErrRateLimited = errors.New("too many failed logins from this address")

// loginGate charges a costly credential check (bcrypt) to the client's
// address before the check runs. The per-IP limiter only counts failures,
// so a failure charged after bcrypt came too late: N wrong passwords sent at
// once all passed the entry check and ran N bcrypts. A gate holds one unit
// of the address's budget while its check runs, and only as many checks run
// at once as the budget has whole units; the unit is given back when the
// check succeeds (successful logins are never limited) and kept when it
// fails. So N concurrent wrong passwords from one address run at most the
// limiter's burst of bcrypts.
//
// The server puts a gate in the request context. A backend that does costly
// work calls acquire right before it (UsersFile does, for the check that
// leads a flight). Requests whose backend never acquired the gate (a check
// shared with another request, a password refused before bcrypt, backends
// that do not use gates) are charged after the fact on failure, as before.
type loginGate struct {
	lim *ipLimiter // nil: no limiting
	ip  string
	now func() time.Time

	mu       sync.Mutex
	held     bool
	acquired bool // ever acquired: the failure was charged through the gate
}

type gateKey struct{}

func withGate(ctx context.Context, g *loginGate) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

// gateFrom returns the request's gate, or one that never refuses when the
// backend is called without the server (tests, other callers).
func gateFrom(ctx context.Context) *loginGate {
	if g, ok := ctx.Value(gateKey{}).(*loginGate); ok && g != nil {
		return g
	}
	return &loginGate{}
}

type outcome int

const (
	outcomeNotRun outcome = iota
	outcomeSucceeded
	outcomeFailed
)

// acquire takes one unit of the address's budget, or reports false when
// none is free. A gate is acquired at most once.
func (g *loginGate) acquire() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held || g.acquired {
		return false
	}
	if g.lim != nil && !g.lim.acquire(g.ip, g.now()) {
		return false
	}
	g.held, g.acquired = true, true
	return true
}

// release ends the check: a failure keeps the unit charged, anything else
// gives it back.
func (g *loginGate) release(o outcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.held {
		return
	}
	g.held = false
	if o != outcomeFailed {
		g.acquired = false // nothing was charged
	}
	if g.lim != nil {
		g.lim.done(g.ip, g.now(), o == outcomeFailed)
	}
}

// charged reports whether a failure was already charged through the gate.
func (g *loginGate) charged() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.acquired && !g.held
}
