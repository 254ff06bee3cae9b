package authsvc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// cryptoRandRead is crypto/rand.Read, named for the call sites.
var cryptoRandRead = rand.Read

// DefaultCredentialCacheTTL is how long a successful password check is
// remembered after its last use. bcrypt is deliberately slow (about 1 ms at
// cost 4 and 50–80 ms at cost 10 here), and a client that reconnects after a
// node failure logs in again with the same password; re-running bcrypt for
// each of thousands of clients moving at once would make auth the bottleneck
// of every failover.
const DefaultCredentialCacheTTL = time.Minute

// DefaultCredentialCacheMaxAge caps an entry's age however often it is
// used. Each use extends an entry by the TTL (a steady stream of logins
// never meets an expiry, so latency does not spike every TTL), but a check
// is still re-done against the hash at least this often, so the cached
// success does not live on indefinitely. The cost is one bcrypt per busy
// user per cap, which the concurrent logins at that moment share.
const DefaultCredentialCacheMaxAge = 10 * time.Minute

// DefaultCredentialCacheSize bounds the cache's memory (about 150 B an entry).
const DefaultCredentialCacheSize = 100_000

// credCache remembers recent successful logins as HMAC-SHA256(process key,
// password), bound to the bcrypt hash they were checked against. It never
// holds a password, and the key never leaves the process, so a memory dump
// gives an attacker nothing to test offline faster than bcrypt. Failures are
// never cached: a wrong password always pays the full bcrypt cost, so the
// cache does not speed up guessing.
//
// An entry expires ttl after its last hit (a sliding window) and at the
// latest maxAge after the bcrypt check that made it.
type credCache struct {
	key    [32]byte
	ttl    time.Duration
	maxAge time.Duration
	max    int
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]credEntry
}

type credEntry struct {
	mac     [sha256.Size]byte
	hash    string // the bcrypt hash checked; a changed hash (reload) misses
	expires time.Time
	hardEnd time.Time // checked at + maxAge; hits never extend past it
}

func newCredCache(ttl, maxAge time.Duration, max int) *credCache {
	c := &credCache{ttl: ttl, maxAge: maxAge, max: max, now: time.Now, entries: make(map[string]credEntry)}
	// Since Go 1.24 crypto/rand.Read never returns an error: if the
	// system's generator fails, the runtime crashes the program instead.
	_, _ = rand.Read(c.key[:])
	return c
}

func (c *credCache) mac(password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(password))
	var out [sha256.Size]byte
	copy(out[:], m.Sum(nil))
	return out
}

// keyOf is the password's HMAC in hex, to key concurrent checks by without
// keeping the password around.
func (c *credCache) keyOf(password string) string {
	m := c.mac(password)
	return hex.EncodeToString(m[:])
}

// hit reports whether user logged in with password against hash within the
// TTL, and if so extends the entry (up to its hard end).
func (c *credCache) hit(user, password string, hash []byte) bool {
	if c == nil || c.ttl <= 0 {
		return false
	}
	mac := c.mac(password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[user]
	now := c.now()
	if !ok || !now.Before(e.expires) || e.hash != string(hash) || !hmac.Equal(e.mac[:], mac[:]) {
		return false
	}
	e.expires = now.Add(c.ttl)
	if e.expires.After(e.hardEnd) {
		e.expires = e.hardEnd
	}
	c.entries[user] = e
	return true
}

// store remembers a successful check.
func (c *credCache) store(user, password string, hash []byte) {
	if c == nil || c.ttl <= 0 {
		return
	}
	now := c.now()
	e := credEntry{mac: c.mac(password), hash: string(hash), expires: now.Add(c.ttl), hardEnd: now.Add(c.maxAge)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Sweep expired entries; if still full, drop arbitrary ones. A
		// dropped entry only costs its user one more bcrypt check.
		for k, v := range c.entries {
			if !now.Before(v.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[user] = e
}

// len is the number of cached logins, for tests.
func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
