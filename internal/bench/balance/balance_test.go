package balance

import (
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBalanceUnderStaleness checks docs/design.md section 11's balance figure on
// its own setup: 10 nodes, 3 auth instances, 1 s gossip lag, a burst of
// 100k assignments. p2c with pending accounting must stay within 1.05
// throughout, and beat naive least-loaded (which herds) and p2c without
// pending accounting.
func TestBalanceUnderStaleness(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Strategies = []Strategy{StrategyP2C, StrategyP2CNoPending, StrategyLeastLoaded}
	cfg.Rates = []float64{DefaultCourseRate}
	cfg.Checkpoints = 0
	rep, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	get := func(s Strategy) SimResult {
		row, ok := rep.Find(s, DefaultCourseRate)
		if !ok {
			t.Fatalf("no row for %s", s)
		}
		t.Log(row.Result)
		return row.Result
	}
	p2c, noPending, least := get(StrategyP2C), get(StrategyP2CNoPending), get(StrategyLeastLoaded)
	if p2c.MaxOverMean > goal || p2c.PeakMaxOverMean > goal {
		t.Errorf("p2c: final max/mean %.4f, peak %.4f; want both ≤ %.2f", p2c.MaxOverMean, p2c.PeakMaxOverMean, goal)
	}
	if p2c.Refused != 0 {
		t.Errorf("p2c refused %d assignments with room to spare", p2c.Refused)
	}
	if !(p2c.PeakMaxOverMean < least.PeakMaxOverMean) {
		t.Errorf("p2c peak %.4f is not better than least-loaded's %.4f", p2c.PeakMaxOverMean, least.PeakMaxOverMean)
	}
	if !(p2c.PeakMaxOverMean < noPending.PeakMaxOverMean) {
		t.Errorf("p2c peak %.4f is not better than p2c without pending accounting (%.4f)", p2c.PeakMaxOverMean, noPending.PeakMaxOverMean)
	}
	// Least-loaded herds: within one gossip lag every instance sends
	// everything to the same node.
	if least.PeakMaxOverMean < 2 {
		t.Errorf("least-loaded peak %.4f: expected herding (≥ 2)", least.PeakMaxOverMean)
	}
	if got := len(p2c.Counts); got != 10 {
		t.Errorf("p2c counts cover %d nodes, want 10", got)
	}
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Base.Assignments = 4000
	cfg.Rates = []float64{2000, 8000}
	cfg.CourseRate = 2000
	cfg.Checkpoints = 4
	return cfg
}

// TestCourseEndsAtTheFullBurst checks the prefix-run reconstruction: the
// last point of each course is the whole burst, so it must agree with the
// full run at the same rate.
func TestCourseEndsAtTheFullBurst(t *testing.T) {
	rep, err := Run(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Config.Strategies {
		course := rep.Course[s]
		if len(course) != 4 {
			t.Fatalf("%s: %d course points, want 4", s, len(course))
		}
		last := course[len(course)-1]
		row, ok := rep.Find(s, 2000)
		if !ok {
			t.Fatalf("%s: no row at 2000/s", s)
		}
		if last.Assigned != 4000 || last.At != 2*time.Second || last.MaxOverMean != row.Result.MaxOverMean {
			t.Errorf("%s: last course point %+v, full burst max/mean %.6f", s, last, row.Result.MaxOverMean)
		}
		for i := 1; i < len(course); i++ {
			if course[i].At <= course[i-1].At {
				t.Errorf("%s: course times not increasing: %v", s, course)
			}
		}
	}
}

func TestPlotAndTable(t *testing.T) {
	rep, err := Run(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "img", "balance.png")
	if err := rep.WritePNG(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1536 || b.Dy() != 720 {
		t.Errorf("image is %dx%d, want 1536x720", b.Dx(), b.Dy())
	}
	// Something was drawn: a good share of the pixels are not white.
	drawn, total := 0, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			total++
			if c := color.GrayModel.Convert(img.At(x, y)).(color.Gray); c.Y < 250 {
				drawn++
			}
		}
	}
	if drawn < total/50 {
		t.Errorf("only %d of %d sampled pixels are drawn", drawn, total)
	}

	md := rep.Markdown()
	lines := strings.Split(strings.TrimSpace(md), "\n")
	if want := 2 + len(rep.Config.Strategies); len(lines) != want {
		t.Fatalf("table has %d lines, want %d:\n%s", len(lines), want, md)
	}
	if !strings.Contains(lines[0], "peak max/mean @ 8k/s") || !strings.HasPrefix(lines[2], "| p2c | ") || !strings.Contains(lines[2], "(1.00×)") {
		t.Errorf("unexpected table:\n%s", md)
	}
	for _, s := range rep.Config.Strategies {
		if !strings.Contains(md, "| "+string(s)+" |") {
			t.Errorf("table has no row for %s", s)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"duplicate strategy": func(c *Config) { c.Strategies = []Strategy{"p2c", "p2c"} },
		"unknown strategy":   func(c *Config) { c.Strategies = []Strategy{"fastest"} },
		"negative rate":      func(c *Config) { c.Rates = []float64{-1} },
		"too many points":    func(c *Config) { c.Checkpoints = c.Base.Assignments + 1 },
		"negative lag":       func(c *Config) { c.Base.Lag = -time.Second },
		"no rates":           func(c *Config) { c.Rates = nil },
		"no strategies":      func(c *Config) { c.Strategies = nil },
		"zero course rate":   func(c *Config) { c.CourseRate = 0 },
		"negative points":    func(c *Config) { c.Checkpoints = -1 },
		"zero nodes":         func(c *Config) { c.Base.Nodes = 0 },
		"zero token ttl":     func(c *Config) { c.Base.TokenTTL = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := smallConfig()
			mutate(&cfg)
			if _, err := Run(cfg); err == nil {
				t.Fatal("Run accepted a bad config")
			} else {
				t.Log(err)
			}
		})
	}
}
