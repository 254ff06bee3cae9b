package balance

import (
	"fmt"
	"testing"
)

// TestSimulateBurstP2CBeatsLeastLoaded is the balance figure of
// docs/design.md section 11: 10 nodes, 3 auth instances, counts 1 s stale,
// a burst of 100k.
func TestSimulateBurstP2CBeatsLeastLoaded(t *testing.T) {
	results := map[Strategy]SimResult{}
	// The other strategies are in BenchmarkSimulateBurst; this keeps the
	// test quick under -race.
	for _, s := range []Strategy{StrategyP2C, StrategyP2COwnPending, StrategyLeastLoaded} {
		r, err := SimulateBurst(SimConfig{Strategy: s, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
		results[s] = r
		if r.Refused != 0 {
			t.Errorf("%s refused %d", s, r.Refused)
		}
	}
	p2c, ll := results[StrategyP2C], results[StrategyLeastLoaded]
	if p2c.MaxOverMean > 1.05 {
		t.Errorf("P2C max/mean = %.4f, design target ≤ 1.05", p2c.MaxOverMean)
	}
	if !(p2c.MaxOverMean < ll.MaxOverMean) || !(p2c.PeakMaxOverMean < ll.PeakMaxOverMean) {
		t.Errorf("P2C (%.4f, peak %.4f) does not beat least-loaded (%.4f, peak %.4f)",
			p2c.MaxOverMean, p2c.PeakMaxOverMean, ll.MaxOverMean, ll.PeakMaxOverMean)
	}
	if own := results[StrategyP2COwnPending]; p2c.MaxOverMean > own.MaxOverMean {
		t.Errorf("scaled pending (%.4f) is worse than own pending only (%.4f)", p2c.MaxOverMean, own.MaxOverMean)
	}
	// Same config, same answer.
	small := SimConfig{Strategy: StrategyP2C, Seed: 7, Assignments: 5000}
	r1, _ := SimulateBurst(small)
	r2, _ := SimulateBurst(small)
	if fmt.Sprint(r1.Counts) != fmt.Sprint(r2.Counts) {
		t.Error("SimulateBurst is not deterministic for a seed")
	}
	if _, err := SimulateBurst(SimConfig{Strategy: "nope"}); err == nil {
		t.Error("unknown strategy: no error")
	}
	if _, err := SimulateBurst(SimConfig{Nodes: -1}); err == nil {
		t.Error("negative nodes: no error")
	}
}

// BenchmarkSimulateBurst reports max/mean (final and peak during the burst)
// for each strategy at several arrival rates.
func BenchmarkSimulateBurst(b *testing.B) {
	for _, rate := range []float64{5_000, 20_000} {
		for _, s := range Strategies {
			b.Run(fmt.Sprintf("rate=%.0f/%s", rate, s), func(b *testing.B) {
				var r SimResult
				for i := 0; i < b.N; i++ {
					var err error
					if r, err = SimulateBurst(SimConfig{Strategy: s, Rate: rate, Seed: uint64(i) + 1}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(r.MaxOverMean, "max/mean")
				b.ReportMetric(r.PeakMaxOverMean, "peak-max/mean")
			})
		}
	}
}
