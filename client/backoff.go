package client

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff computes full-jitter exponential delays: attempt n sleeps a
// uniformly random time in [0, min(Max, Base·2^n)). Full jitter spreads a
// crowd of clients that lost the same node over the whole window instead of
// sending them back to auth in synchronized waves (see the AWS architecture
// blog, "Exponential Backoff and Jitter").
type Backoff struct {
	// Base is the window of the first retry.
	Base time.Duration
	// Max caps the window; 0 means no cap.
	Max time.Duration
	// Rand returns a uniform value in [0, n); nil uses math/rand/v2.
	Rand func(n int64) int64
}

// Window is the upper bound of the delay for attempt (0-based).
func (b Backoff) Window(attempt int) time.Duration {
	if b.Base <= 0 {
		return 0
	}
	limit := b.Max
	if limit <= 0 {
		limit = math.MaxInt64 / 2 // no cap, but no overflow either
	}
	w := b.Base
	for i := 0; i < attempt && w < limit; i++ {
		w *= 2
	}
	return min(w, limit)
}

// Delay returns a random delay for attempt, at least floor (a server's
// Retry-After).
func (b Backoff) Delay(attempt int, floor time.Duration) time.Duration {
	w := b.Window(attempt)
	var d time.Duration
	if w > 0 {
		rnd := b.Rand
		if rnd == nil {
			rnd = rand.Int64N
		}
		d = time.Duration(rnd(int64(w)))
	}
	if d < floor {
		d = floor
	}
	return d
}
