package authsvc

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxTrackedIPs bounds the per-IP limiter table.
const DefaultMaxTrackedIPs = 100_000

// ipLimiter keeps one token bucket per client IP in a bounded map. Buckets
// idle long enough to have refilled completely carry no information and are
// evicted; when the table is still full, an arbitrary entry is dropped
// (Go's map order), which costs O(1) instead of a scan per request under a
// many-address flood. Dropping an entry forgives that IP's past failures,
// which only helps an attacker who already controls more addresses than the
// table holds.
type ipLimiter struct {
	limit rate.Limit
	burst int
	max   int
	idle  time.Duration

	mu        sync.Mutex
	ips       map[string]*ipEntry
	lastSweep time.Time
}

type ipEntry struct {
	lim  *rate.Limiter
	last time.Time
	// inflight counts the credential checks holding a unit of this bucket
	// (loginGate); they run only while the bucket has a whole unit each.
	inflight int
}

func newIPLimiter(limit rate.Limit, burst, maxIPs int) *ipLimiter {
	// A bucket refills completely in burst/limit; after that it is
	// indistinguishable from a new one.
	idle := time.Minute
	if limit > 0 && limit != rate.Inf {
		if d := time.Duration(float64(burst) / float64(limit) * float64(time.Second)); d > idle {
			idle = d
		}
	}
	return &ipLimiter{limit: limit, burst: burst, max: maxIPs, idle: idle, ips: make(map[string]*ipEntry)}
}

// allow reports whether ip may attempt a login now, and if not how long
// until it may. It consumes nothing: failures are charged by acquire/done
// (checks that run bcrypt) or by fail (after the fact).
func (l *ipLimiter) allow(ip string, now time.Time) (ok bool, retry time.Duration) {
	if l.limit == rate.Inf {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wait(l.get(ip, now).lim.TokensAt(now))
}

// wait is how long until tokens reach 1.
func (l *ipLimiter) wait(tokens float64) (bool, time.Duration) {
	if tokens >= 1 {
		return true, 0
	}
	if l.limit <= 0 {
		return false, time.Hour
	}
	return false, time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
}

// retryAfter is how long until ip could start one more check, counting the
// checks in flight as charged.
func (l *ipLimiter) retryAfter(ip string, now time.Time) time.Duration {
	if l.limit == rate.Inf {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(ip, now)
	_, d := l.wait(e.lim.TokensAt(now) - float64(e.inflight))
	return d
}

// acquire reserves one unit of ip's budget for a check about to run: it
// succeeds while the bucket holds a whole unit for every check in flight,
// this one included. See loginGate.
func (l *ipLimiter) acquire(ip string, now time.Time) bool {
	if l.limit == rate.Inf {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(ip, now)
	if e.lim.TokensAt(now)-float64(e.inflight) < 1 {
		return false
	}
	e.inflight++
	return true
}

// done ends a check acquire let run, charging the unit when it failed.
func (l *ipLimiter) done(ip string, now time.Time, failed bool) {
	if l.limit == rate.Inf {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(ip, now)
	if e.inflight > 0 {
		e.inflight--
	}
	if failed {
		e.lim.ReserveN(now, 1)
	}
}

// fail charges one failed login to ip. It reserves rather than checks, so
// the bucket may go into debt: failures that were already in flight when
// the budget ran out are still paid for, which pushes the next allowed
// attempt further out. An attacker cannot gain guesses by sending them
// concurrently; over time they get at most LoginRate per second plus the
// burst.
func (l *ipLimiter) fail(ip string, now time.Time) {
	if l.limit == rate.Inf {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.get(ip, now).lim.ReserveN(now, 1)
}

// get returns ip's entry, creating it (and evicting others) as needed.
// l.mu must be held.
func (l *ipLimiter) get(ip string, now time.Time) *ipEntry {
	if now.Sub(l.lastSweep) >= l.idle {
		l.lastSweep = now
		for k, e := range l.ips {
			// A bucket in debt, or with checks in flight, is kept.
			if e.inflight == 0 && now.Sub(e.last) >= l.idle && e.lim.TokensAt(now) >= float64(l.burst) {
				delete(l.ips, k)
			}
		}
	}
	e := l.ips[ip]
	if e == nil {
		for len(l.ips) >= l.max {
			l.evictOne()
		}
		e = &ipEntry{lim: rate.NewLimiter(l.limit, l.burst)}
		l.ips[ip] = e
	}
	e.last = now
	return e
}

// evictOne drops an arbitrary entry, preferring one with no check in flight
// among the first few looked at (Go's map order is random).
func (l *ipLimiter) evictOne() {
	var victim string
	looked := 0
	for k, e := range l.ips {
		victim = k
		if e.inflight == 0 || looked >= 16 {
			break
		}
		looked++
	}
	delete(l.ips, victim)
}

// size is the number of tracked IPs (for tests).
func (l *ipLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ips)
}

// clientIP is the address rate limiting applies to. With trustXFF it is the
// rightmost X-Forwarded-For entry: the address our own proxy saw, which a
// client cannot forge (entries to its left can be anything the client
// sent). Only enable it behind a proxy that sets the header.
func clientIP(r *http.Request, trustXFF bool) string {
	if trustXFF {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			for i := len(parts) - 1; i >= 0; i-- {
				if ip := strings.TrimSpace(parts[i]); ip != "" {
					if parsed := net.ParseIP(ip); parsed != nil {
						return parsed.String()
					}
					break
				}
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
