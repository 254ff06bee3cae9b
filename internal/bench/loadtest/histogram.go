package loadtest

import (
	"encoding/json"
	"math"
	"math/bits"
	"sort"
	"time"
)

// Histogram records durations in microseconds in log-linear buckets, like
// HdrHistogram with 2 significant digits: values below 128µs are exact, and
// above that each power of two is split into 64 buckets, so a bucket is at
// most 1/64 (1.6%) wide relative to its values. Unlike a sample list it has
// a fixed, small size and merges exactly, which is what combining the
// percentiles of several worker processes needs.
type Histogram struct {
	counts map[int]uint64
	total  uint64
	sum    float64 // µs
	min    int64   // µs
	max    int64   // µs
}

const subBuckets = 64 // per power of two above linearMax
const linearMax = 2 * subBuckets

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{counts: map[int]uint64{}} }

func bucketOf(us int64) int {
	if us < linearMax {
		if us < 0 {
			return 0
		}
		return int(us)
	}
	shift := bits.Len64(uint64(us)) - 7 // keep the top 7 bits: 64..127
	return linearMax + (shift-1)*subBuckets + int(us>>shift) - subBuckets
}

// bucketHigh is the largest value that falls in bucket b.
func bucketHigh(b int) int64 {
	if b < linearMax {
		return int64(b)
	}
	shift := (b-linearMax)/subBuckets + 1
	mant := int64((b-linearMax)%subBuckets + subBuckets)
	return (mant+1)<<shift - 1
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	if h.total == 0 || us < h.min {
		h.min = us
	}
	if us > h.max {
		h.max = us
	}
	h.counts[bucketOf(us)]++
	h.total++
	h.sum += float64(us)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.total == 0 {
		return
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	for b, c := range o.counts {
		h.counts[b] += c
	}
	h.total += o.total
	h.sum += o.sum
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest recorded value (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// Min is the smallest recorded value (exact).
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) * time.Microsecond }

// Mean is the average of the recorded values.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum/float64(h.total)) * time.Microsecond
}

// Quantile returns the value at quantile q (0..1): the upper edge of the
// bucket holding the ceil(q·n)-th smallest value, capped at Max, so it
// overstates by at most one bucket width (1.6%) and never understates.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	keys := make([]int, 0, len(h.counts))
	for b := range h.counts {
		keys = append(keys, b)
	}
	sort.Ints(keys)
	var seen uint64
	for _, b := range keys {
		seen += h.counts[b]
		if seen >= rank {
			v := bucketHigh(b)
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

// histogramJSON is the wire form between worker processes: sparse buckets.
type histogramJSON struct {
	Buckets [][2]uint64 `json:"buckets"` // [bucket, count], sorted by bucket
	Sum     float64     `json:"sum_us"`
	Min     int64       `json:"min_us"`
	Max     int64       `json:"max_us"`
	// Summary fields for readers of the JSON report; ignored on input.
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// MarshalJSON writes the buckets (for merging) plus count, p50, p99 and max
// in milliseconds (for people and scripts).
func (h *Histogram) MarshalJSON() ([]byte, error) {
	j := histogramJSON{Sum: h.sum, Min: h.min, Max: h.max, Count: h.total,
		P50: ms(h.Quantile(0.5)), P99: ms(h.Quantile(0.99)), MaxMS: ms(h.Max())}
	j.Buckets = make([][2]uint64, 0, len(h.counts))
	for b, c := range h.counts {
		j.Buckets = append(j.Buckets, [2]uint64{uint64(b), c})
	}
	sort.Slice(j.Buckets, func(a, b int) bool { return j.Buckets[a][0] < j.Buckets[b][0] })
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (h *Histogram) UnmarshalJSON(data []byte) error {
	var j histogramJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*h = Histogram{counts: make(map[int]uint64, len(j.Buckets)), sum: j.Sum, min: j.Min, max: j.Max}
	for _, bc := range j.Buckets {
		h.counts[int(bc[0])] += bc[1]
		h.total += bc[1]
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
