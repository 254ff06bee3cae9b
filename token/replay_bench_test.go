package token

import (
	"crypto/rand"
	"encoding/hex"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkReplayCacheMemory: the live heap a node's replay cache holds for
// a burst of 100,000 connects within one token life (what a node taking a
// reconnect storm keeps), and what it still holds once those tokens have
// expired and the steady trickle of connects afterwards has swept every
// shard. Each jti is a string of its own, as the token's JSON decoding
// makes it. Reported per token of the burst; the time per op is
// meaningless.
func BenchmarkReplayCacheMemory(b *testing.B) {
	const burst = 100_000
	ids := make([]string, burst+replayShards*64)
	for i := range ids {
		var r [16]byte
		_, _ = rand.Read(r[:])
		ids[i] = hex.EncodeToString(r[:])
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var held, after float64
	for b.Loop() {
		now := time.Unix(1_000_000, 0)
		base := heap()
		c := NewReplayCache()
		c.now = func() time.Time { return now }
		for _, id := range ids[:burst] {
			c.Add(strings.Clone(id), now.Add(DefaultTTL+DefaultLeeway))
		}
		held += float64(heap()) - float64(base)
		// The burst's tokens expire; a trickle of new ones reaches every
		// shard, each sweeping its shard as it comes.
		now = now.Add(DefaultTTL + DefaultLeeway + 2*time.Second)
		for _, id := range ids[burst:] {
			c.Add(strings.Clone(id), now.Add(DefaultTTL+DefaultLeeway))
		}
		if n := c.Len(); n > len(ids)-burst {
			b.Fatalf("%d entries after the burst expired, want at most %d", n, len(ids)-burst)
		}
		after += float64(heap()) - float64(base)
		runtime.KeepAlive(c)
	}
	n := float64(b.N) * burst
	b.ReportMetric(held/n, "B/token-held")
	b.ReportMetric(after/n, "B/token-after-expiry")
}
