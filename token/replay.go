package token

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"sync"
	"time"
)

const replayShards = 32

// replayShrinkFloor is the fewest entries a shard must have held before a
// sweep that leaves it mostly empty makes it a smaller map: below it the
// map is a few KiB and not worth rebuilding.
const replayShrinkFloor = 256

// ReplayCache remembers used jtis until their token expires. It is sharded
// so that a burst of upgrades does not serialise on one lock, and it sweeps a
// shard lazily so no background goroutine is needed.
//
// A jti is kept as its 16 bytes, with the expiry as Unix nanoseconds: a
// map of pointer-free entries, which the collector does not scan, and no
// string per token. A Go map never gives back the room it grew to, so a
// shard that a sweep leaves mostly empty after a burst is copied into a map
// of its new size (BenchmarkReplayCacheMemory).
type ReplayCache struct {
	seed   maphash.Seed
	shards [replayShards]replayShard
	now    func() time.Time
}

type replayKey [16]byte

type replayShard struct {
	mu        sync.Mutex
	seen      map[replayKey]int64
	peak      int // the most entries since seen was made
	nextSweep int64
}

// NewReplayCache returns an empty cache.
func NewReplayCache() *ReplayCache {
	c := &ReplayCache{seed: maphash.MakeSeed(), now: time.Now}
	for i := range c.shards {
		c.shards[i].seen = make(map[replayKey]int64)
	}
	return c
}

// keyOf is a jti's key: the 128 bits a Verifier-checked jti (32
// lowercase hex digits) spells, or for any other string, 128 bits of its SHA-256, under
// a prefix so that no string's hash stands for the hex of another.
func keyOf(jti string) replayKey {
	var k replayKey
	if isLowerHex(jti, 2*len(k)) {
		_, _ = hex.Decode(k[:], []byte(jti))
		return k
	}
	h := sha256.Sum256([]byte("wsdirect replay key\x00" + jti))
	copy(k[:], h[:])
	return k
}

// Add records jti until expiry and reports whether it was new.
func (c *ReplayCache) Add(jti string, expiry time.Time) bool {
	k := keyOf(jti)
	s := &c.shards[maphash.Comparable(c.seed, k)%replayShards]
	now := c.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now > s.nextSweep {
		s.sweep(now)
	}
	if exp, ok := s.seen[k]; ok && now <= exp {
		return false
	}
	s.seen[k] = expiry.UnixNano()
	s.peak = max(s.peak, len(s.seen))
	return true
}

// Sweep drops every expired jti now, in every shard, and gives back the
// room a burst left. Add sweeps a shard as it goes, a second apart at
// most; Sweep is for a process that stops taking tokens after a burst.
func (c *ReplayCache) Sweep() {
	now := c.now().UnixNano()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.sweep(now)
		s.mu.Unlock()
	}
}

// sweep drops the expired jtis; s.mu is held.
func (s *replayShard) sweep(now int64) {
	for k, exp := range s.seen {
		if now > exp {
			delete(s.seen, k)
		}
	}
	s.nextSweep = now + int64(time.Second)
	if s.peak >= replayShrinkFloor && len(s.seen) <= s.peak/4 {
		m := make(map[replayKey]int64, len(s.seen))
		for k, exp := range s.seen {
			m[k] = exp
		}
		s.seen, s.peak = m, len(m)
	}
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
