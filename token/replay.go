package token

import (
	"hash/maphash"
	"sync"
	"time"
)

const replayShards = 32

// ReplayCache remembers used jtis until their token expires. It is sharded
// so that a burst of upgrades does not serialise on one lock, and it sweeps a
// shard lazily so no background goroutine is needed.
type ReplayCache struct {
	seed   maphash.Seed
	shards [replayShards]replayShard
	now    func() time.Time
}

type replayShard struct {
	mu        sync.Mutex
	seen      map[string]time.Time
	nextSweep time.Time
}

// NewReplayCache returns an empty cache.
func NewReplayCache() *ReplayCache {
	c := &ReplayCache{seed: maphash.MakeSeed(), now: time.Now}
	for i := range c.shards {
		c.shards[i].seen = make(map[string]time.Time)
	}
	return c
}

// Add records jti until expiry and reports whether it was new.
func (c *ReplayCache) Add(jti string, expiry time.Time) bool {
	s := &c.shards[maphash.String(c.seed, jti)%replayShards]
	now := c.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.After(s.nextSweep) {
		for k, exp := range s.seen {
			if now.After(exp) {
				delete(s.seen, k)
			}
		}
		s.nextSweep = now.Add(time.Second)
	}
	if exp, ok := s.seen[jti]; ok && !now.After(exp) {
		return false
	}
	s.seen[jti] = expiry
	return true
}

// Len is the number of remembered jtis, expired ones not yet swept included.
func (c *ReplayCache) Len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].seen)
		c.shards[i].mu.Unlock()
	}
	return n
}
