package loadtest

import (
	"encoding/json"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBucketEdges(t *testing.T) {
	// Every value lies in its bucket, buckets are monotone, and a bucket is
	// at most 1/64 of its values wide.
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 65535, 1 << 20, 1<<40 + 12345} {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < previous %d", v, b, prev)
		}
		prev = b
		hi := bucketHigh(b)
		lo := int64(0)
		if b > 0 {
			lo = bucketHigh(b-1) + 1
		}
		if v < lo || v > hi {
			t.Fatalf("value %d not in bucket %d [%d, %d]", v, b, lo, hi)
		}
		if v >= linearMax && float64(hi-lo+1) > float64(v)/64+1 {
			t.Fatalf("bucket %d [%d,%d] too wide for %d", b, lo, hi, v)
		}
	}
}

func TestQuantilesMatchSortedSamples(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var samples []time.Duration
	// Three "workers" whose histograms are merged after a JSON round trip,
	// as RunWorkers does.
	merged := NewHistogram()
	for w := 0; w < 3; w++ {
		h := NewHistogram()
		for i := 0; i < 5000; i++ {
			d := time.Duration(rnd.ExpFloat64()*float64(2*time.Millisecond)) + time.Duration(w)*time.Millisecond
			d = d.Truncate(time.Microsecond)
			samples = append(samples, d)
			h.Record(d)
		}
		data, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var back Histogram
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		merged.Merge(&back)
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	if merged.Count() != uint64(len(samples)) {
		t.Fatalf("count = %d, want %d", merged.Count(), len(samples))
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := samples[int(q*float64(len(samples)))-1]
		got := merged.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/64+float64(time.Microsecond) {
			t.Errorf("q%.3f = %v, exact %v: off by more than one bucket", q, got, exact)
		}
	}
	if merged.Max() != samples[len(samples)-1] || merged.Min() != samples[0] {
		t.Errorf("min/max = %v/%v, want %v/%v", merged.Min(), merged.Max(), samples[0], samples[len(samples)-1])
	}
}

func TestEmptyHistogram(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.99) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram reports values")
	}
	h.Merge(NewHistogram())
	h.Merge(nil)
	if h.Count() != 0 {
		t.Fatal("merging empties added values")
	}
}
