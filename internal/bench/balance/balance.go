package balance

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config selects what Run simulates. Base carries everything the
// strategies share (nodes, auth instances, lag, burst size, seed); its
// Strategy and Rate are set by Run.
type Config struct {
	// Base is the shared simulation setup. Zero fields take authsvc's
	// defaults: 10 nodes, 3 auth instances, 1 s lag, a 100,000 burst,
	// counts published every 100 ms. Cap defaults here to 2 × burst /
	// nodes, fixed for every prefix run of the course (see package doc).
	Base SimConfig
	// Strategies to compare, in table and legend order. Default: every
	// authsvc strategy (Strategies).
	Strategies []Strategy
	// Rates are the arrival rates (assignments per second across all auth
	// instances) of the table and the bar panel. Default DefaultRates.
	Rates []float64
	// CourseRate is the arrival rate of the course-of-the-burst panel.
	// Default DefaultCourseRate.
	CourseRate float64
	// Checkpoints is how many points each course has. Each point costs a
	// simulation of the burst up to that point, so the course costs about
	// Checkpoints/2 full bursts. Default DefaultCheckpoints; 0 or less
	// after defaults means no course.
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
		Base:        SimConfig{Nodes: 10, Auths: 3, Assignments: 100_000, Lag: time.Second, Seed: DefaultSeed},
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
	// Config is the configuration after defaults.
	Config Config
	// Rows holds every (strategy, rate) pair, strategies in Config order
	// within each rate, rates in Config order.
	Rows []Row
	// Course holds, per strategy, the max/mean over the burst at
	// Config.CourseRate.
	Course map[Strategy][]Point
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Strategies) == 0 {
		c.Strategies = append([]Strategy(nil), Strategies...)
	}
	if len(c.Rates) == 0 {
		c.Rates = append([]float64(nil), DefaultRates...)
	}
	if c.CourseRate == 0 {
		c.CourseRate = DefaultCourseRate
	}
	if c.Base.Nodes == 0 {
		c.Base.Nodes = 10
	}
	if c.Base.Assignments == 0 {
		c.Base.Assignments = 100_000
	}
	if c.Base.Cap == 0 {
		c.Base.Cap = max(1, 2*c.Base.Assignments/c.Base.Nodes)
	}
	var errs []error
	seen := map[Strategy]bool{}
	for _, s := range c.Strategies {
		if seen[s] {
			errs = append(errs, fmt.Errorf("strategy %q is listed twice", s))
		}
		seen[s] = true
	}
	for _, r := range c.Rates {
		if r <= 0 {
			errs = append(errs, fmt.Errorf("rate %g must be positive", r))
		}
	}
	if c.CourseRate < 0 {
		errs = append(errs, fmt.Errorf("course rate %g must be positive", c.CourseRate))
	}
	if c.Checkpoints > c.Base.Assignments {
		errs = append(errs, fmt.Errorf("checkpoints (%d) must not exceed the burst size (%d)", c.Checkpoints, c.Base.Assignments))
	}
	return c, errors.Join(errs...)
}

// Run simulates every strategy at every rate, and the course of the burst
// at CourseRate. Invalid settings (here or in SimConfig) give an
// error naming them.
func Run(cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("balanceplot: %w", err)
	}
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

// runCourse replays the burst up to each checkpoint. Cap is fixed (by
// withDefaults) so that every prefix run makes the same choices as the
// full burst.
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
