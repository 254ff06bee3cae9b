// Package probe holds what tests and harnesses use to watch a system they
// do not drive step by step: a bounded wait for a condition (Until in a
// test's goroutine, Poll anywhere else) and a port that is free to bind
// (FreePort, LoopbackPort, SharedFreePort).
//
// A condition is a func() error: nil once it holds, otherwise an error that
// says what it saw instead. Every wait is bounded both in time and in the
// number of checks, and a wait that runs out reports what was awaited and
// the last state observed, so that a failure on CI can be understood from
// its message alone.
//
// The package does not import testing, so the bench harnesses, which run in
// ordinary binaries, use the same waits as the tests.
package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Interval is how often Until checks its condition. 10ms is short next to
// the gossip and network timings tests wait for, and long enough that a
// condition which takes a lock or reads a registry costs a loaded machine
// little.
const Interval = 10 * time.Millisecond

// ErrTimeout is wrapped by the error Poll returns when the time ran out (or
// the checks did) before the condition held.
var ErrTimeout = errors.New("timed out")

// TB is the part of testing.TB that Until and LoopbackPort use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Until checks cond every Interval until it returns nil, and fails tb when
// timeout passes first, with what and cond's last error. Call it from the
// test's goroutine (it calls Fatalf); other goroutines use Poll.
func Until(tb TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Poll(context.Background(), timeout, Interval, what, cond); err != nil {
		tb.Fatalf("%v", err)
	}
}

// Poll checks cond every interval until it returns nil (Poll returns nil),
// timeout passes (an error wrapping ErrTimeout), ctx ends (an error
// wrapping ctx.Err()) or cond returns an error made by Stop (an error
// wrapping the one given to Stop). The condition is checked once more at
// the deadline, and at most timeout/interval+2 times in all. An interval
// <= 0 means Interval; a timeout <= 0 means a single check.
func Poll(ctx context.Context, timeout, interval time.Duration, what string, cond func() error) error {
	if interval <= 0 {
		interval = Interval
	}
	start := time.Now()
	deadline := start.Add(timeout)
	maxChecks := 1
	if timeout > 0 {
		maxChecks = int(timeout/interval) + 2
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for checks := 1; ; checks++ {
		last := cond()
		if last == nil {
			return nil
		}
		var stop stopError
		if errors.As(last, &stop) {
			return fmt.Errorf("waiting for %s: %w", what, stop.err)
		}
		left := time.Until(deadline)
		if left <= 0 || checks >= maxChecks {
			return fmt.Errorf("waiting for %s: %w after %v (%d checks); last seen: %v",
				what, ErrTimeout, time.Since(start).Round(time.Millisecond), checks, last)
		}
		wait := min(interval, left)
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w after %v (%d checks); last seen: %v",
				what, ctx.Err(), time.Since(start).Round(time.Millisecond), checks, last)
		case <-timer.C:
		}
	}
}

// Stop wraps err so that Poll (or Until) gives up at once and returns it,
// for a condition that can no longer hold: the process it waits for has
// exited, say. Stop(nil) is nil: the condition holds.
func Stop(err error) error {
	if err == nil {
		return nil
	}
	return stopError{err}
}

type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }
func (e stopError) Unwrap() error { return e.err }

// Equal is a condition's usual answer: nil when got equals want, otherwise
// an error saying "name = got, want want".
func Equal[T comparable](name string, got, want T) error {
	if got == want {
		return nil
	}
	return fmt.Errorf("%s = %v, want %v", name, got, want)
}

// Check turns a yes/no observation into a condition's answer: nil when ok,
// otherwise an error made of format and args, which should describe the
// state seen.
func Check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// freePortTries bounds FreePort's search; a port busy for UDP but free for
// TCP is rare, so a few tries always suffice in practice.
const freePortTries = 10

// FreePort returns a port on ip that was free for both TCP and UDP a moment
// ago (gossip binds both on one port). Another process may take it before
// the caller binds it; on loopback that race is rare, and the caller's bind
// fails loudly when it happens.
func FreePort(ip netip.Addr) (int, error) {
	var last error
	for try := 0; try < freePortTries; try++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			return 0, fmt.Errorf("probe: no free TCP port on %s: %w", ip, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		l.Close()
		if err != nil {
			last = err
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, fmt.Errorf("probe: no port on %s free for both TCP and UDP in %d tries: %w", ip, freePortTries, last)
}

// sharedPortTries bounds SharedFreePort's search of its 12,000 ports.
const sharedPortTries = 200

// SharedFreePort returns a port that was free for TCP and UDP on every one
// of ips a moment ago, for members that must share one port number (as on
// EC2, where every member gossips on the same port). The kernel cannot
// pick such a port, so it is drawn from 20000–31999, below Linux's
// ephemeral range (32768–60999): there no outgoing connection of a
// concurrently running test can take it meanwhile.
func SharedFreePort(ips ...netip.Addr) (int, error) {
	for try := 0; try < sharedPortTries; try++ {
		port := 20000 + rand.IntN(12000)
		if portFree(ips, port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("probe: no port free on all of %v in %d tries", ips, sharedPortTries)
}

func portFree(ips []netip.Addr, port int) bool {
	for _, ip := range ips {
		addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}

// LoopbackPort is FreePort on 127.0.0.1 for tests: it fails tb instead of
// returning an error.
func LoopbackPort(tb TB) int {
	tb.Helper()
	port, err := FreePort(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return port
}
