package balance

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config selects what Run simulates. Start from DefaultConfig; Run rejects
// invalid fields. Base carries everything the strategies share (nodes,
// auth instances, lag, burst size, seed); its Strategy and Rate are set by
// Run.
type Config struct {
	// Base is the shared simulation setup. Its Cap, when 0, is derived
	// once from the whole burst and fixed for every prefix run of the
	// course (see package doc); Report.Config holds the cap used.
	Base SimConfig
	// Strategies to compare, in table and legend order; at least one.
	Strategies []Strategy
	// Rates are the arrival rates (assignments per second across all auth
	// instances) of the table and the bar panel; at least one.
	Rates []float64
	// CourseRate is the arrival rate of the course-of-the-burst panel.
	// Must be > 0.
	CourseRate float64
	// Checkpoints is how many points each course has; 0 means no course.
	// Each point costs a simulation of the burst up to that point, so the
	// course costs about Checkpoints/2 full bursts.
	Checkpoints int
}

// Defaults applied by DefaultConfig.
var (
	// DefaultRates spans a slow trickle (5k/s: a 100k burst lasts 20 s,
	// many gossip rounds) to a storm (100k/s: the whole burst lands within
	// one gossip lag).
	DefaultRates = []float64{5_000, 20_000, 100_000}
)

const (
	// DefaultCourseRate is authsvc's default rate: a 100k burst in 5 s.
	DefaultCourseRate = 20_000
	// DefaultCheckpoints gives a smooth course at about 12 bursts' cost.
	DefaultCheckpoints = 25
	// DefaultSeed fixes every random choice so the figures are
	// reproducible.
	DefaultSeed = 1
)

// DefaultConfig is the setup behind docs/benchmarks.md and docs/design.md
// section 5: 10 nodes, 3 auth instances, 1 s gossip lag and a 100k burst.
func DefaultConfig() Config {
	return Config{
		Base:        DefaultSimConfig(),
		Strategies:  append([]Strategy(nil), Strategies...),
		Rates:       append([]float64(nil), DefaultRates...),
		CourseRate:  DefaultCourseRate,
		Checkpoints: DefaultCheckpoints,
	}
}

// Row is one strategy at one rate.
type Row struct {
	Strategy Strategy
	Rate     float64
	Result   SimResult
}

// Point is the state of one burst after Assigned assignments.
type Point struct {
	// At is the time into the burst.
	At time.Duration
	// Assigned is how many assignments have been made so far.
	Assigned int
	// MaxOverMean is the busiest node's count over the mean, at that time.
	MaxOverMean float64
}

// Report is what Run measured.
type Report struct {
	// Config is the configuration run, with the cap used.
	Config Config
	// Rows holds every (strategy, rate) pair, strategies in Config order
	// within each rate, rates in Config order.
	Rows []Row
	// Course holds, per strategy, the max/mean over the burst at
	// Config.CourseRate.
	Course map[Strategy][]Point
}

// validate reports every problem with c, the base simulation included.
func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("balanceplot: "+format, args...)) }
	if len(c.Strategies) == 0 {
		add("Strategies: at least one is required")
	}
	seen := map[Strategy]bool{}
	for _, s := range c.Strategies {
		if seen[s] {
			add("Strategies: %q is listed twice", s)
		}
		seen[s] = true
	}
	if len(c.Rates) == 0 {
		add("Rates: at least one is required")
	}
	for _, r := range c.Rates {
		if r <= 0 {
			add("Rates: %g must be positive", r)
		}
	}
	if !(c.CourseRate > 0) {
		add("CourseRate %g must be positive", c.CourseRate)
	}
	if c.Checkpoints < 0 || c.Checkpoints > c.Base.Assignments {
		add("Checkpoints (%d) must be from 0 to the burst size (%d)", c.Checkpoints, c.Base.Assignments)
	}
	// Strategy and Rate are set per run; check the rest with any valid pair.
	base := c.Base
	base.Strategy, base.Rate = StrategyP2C, 1
	if err := base.validate(); err != nil {
		add("Base: %v", err)
	}
	return errors.Join(errs...)
}

// Run simulates every strategy at every rate, and the course of the burst
// at CourseRate. Invalid settings (here or in SimConfig) give an
// error naming them.
func Run(cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Base.Cap = cfg.Base.capOrDerived()
	rep := &Report{Config: cfg, Course: map[Strategy][]Point{}}
	for _, rate := range cfg.Rates {
		for _, s := range cfg.Strategies {
			sc := cfg.Base
			sc.Strategy, sc.Rate = s, rate
			res, err := SimulateBurst(sc)
			if err != nil {
				return nil, fmt.Errorf("balanceplot: %s at %g/s: %w", s, rate, err)
			}
			rep.Rows = append(rep.Rows, Row{Strategy: s, Rate: rate, Result: res})
		}
	}
	for _, s := range cfg.Strategies {
		course, err := runCourse(cfg, s)
		if err != nil {
			return nil, err
		}
		rep.Course[s] = course
	}
	return rep, nil
}

// runCourse replays the burst up to each checkpoint. Cap is fixed (by Run)
// so that every prefix run makes the same choices as the full burst.
func runCourse(cfg Config, s Strategy) ([]Point, error) {
	var out []Point
	n := cfg.Base.Assignments
	for i := 1; i <= cfg.Checkpoints; i++ {
		k := n * i / cfg.Checkpoints
		sc := cfg.Base
		sc.Strategy, sc.Rate, sc.Assignments = s, cfg.CourseRate, k
		res, err := SimulateBurst(sc)
		if err != nil {
			return nil, fmt.Errorf("balanceplot: %s course at %d assignments: %w", s, k, err)
		}
		out = append(out, Point{
			At:          time.Duration(float64(k) / cfg.CourseRate * float64(time.Second)),
			Assigned:    k,
			MaxOverMean: res.MaxOverMean,
		})
	}
	return out, nil
}

// Find returns the row for strategy s at rate, if Run simulated it.
func (r *Report) Find(s Strategy, rate float64) (Row, bool) {
	for _, row := range r.Rows {
		if row.Strategy == s && row.Rate == rate {
			return row, true
		}
	}
	return Row{}, false
}

// Markdown renders the table for docs/benchmarks.md: for each rate the
// final and the peak max/mean of every strategy, each with its ratio to
// p2c (the strategy the auth service runs) at the same rate.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| strategy |")
	for _, rate := range r.Config.Rates {
		fmt.Fprintf(&b, " final max/mean @ %s | peak max/mean @ %s |", rateLabel(rate), rateLabel(rate))
	}
	b.WriteString(" refused @ " + rateLabel(r.Config.Rates[len(r.Config.Rates)-1]) + " |\n|---|")
	for range r.Config.Rates {
		b.WriteString("---:|---:|")
	}
	b.WriteString("---:|\n")
	for _, s := range r.Config.Strategies {
		fmt.Fprintf(&b, "| %s |", s)
		var last Row
		for _, rate := range r.Config.Rates {
			row, _ := r.Find(s, rate)
			last = row
			ref, hasRef := r.Find(StrategyP2C, rate)
			fmt.Fprintf(&b, " %s | %s |",
				cell(row.Result.MaxOverMean, ref.Result.MaxOverMean, hasRef),
				cell(row.Result.PeakMaxOverMean, ref.Result.PeakMaxOverMean, hasRef))
		}
		fmt.Fprintf(&b, " %d |\n", last.Result.Refused)
	}
	return b.String()
}

func cell(v, ref float64, hasRef bool) string {
	if !hasRef || ref == 0 {
		return fmt.Sprintf("%.4f", v)
	}
	return fmt.Sprintf("%.4f (%.2f×)", v, v/ref)
}

// rateLabel prints 20000 as "20k/s".
func rateLabel(rate float64) string {
	if rate >= 1000 && rate == float64(int64(rate/1000))*1000 {
		return fmt.Sprintf("%dk/s", int64(rate/1000))
	}
	return fmt.Sprintf("%g/s", rate)
}
