// Command wsdirect-plot draws the figures in docs/benchmarks.md.
//
//	go run ./cmd/wsdirect-plot balance -out docs/img/balance.png
//
// "balance" simulates a burst of assignments under stale gossip for every
// assignment strategy (package internal/bench/balance, driving
// balance.SimulateBurst), writes the PNG and prints the Markdown table that
// goes with it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/balance"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: wsdirect-plot balance [flags]

Commands:
  balance   balance of a burst of assignments under stale gossip, per strategy

"wsdirect-plot balance -h" lists its flags.
`

// errFlagParse means the flag package already printed the fault and the
// usage.
var errFlagParse = errors.New("invalid flags")

// run is main without the process; it returns the exit code: 0, or 2 for a
// bad command line or a failure. Usage goes to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "balance":
		if err := balanceCmd(args[1:], stdout, stderr); err != nil {
			switch {
			case errors.Is(err, flag.ErrHelp):
				return 0
			case !errors.Is(err, errFlagParse): // else flag printed it
				fmt.Fprintln(stderr, "wsdirect-plot balance:", err)
			}
			return 2
		}
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "wsdirect-plot: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

func balanceCmd(args []string, stdout, stderr io.Writer) error {
	def := balance.DefaultConfig()
	fs := flag.NewFlagSet("wsdirect-plot balance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: wsdirect-plot balance [flags]

Simulates a burst of assignments under stale gossip for every assignment
strategy, writes the PNG and prints the Markdown table that goes with it.

flags:
`)
		fs.PrintDefaults()
	}
	out := fs.String("out", "docs/img/balance.png", "PNG file to write")
	nodes := fs.Int("nodes", def.Base.Nodes, "nodes in the cluster")
	auths := fs.Int("auths", def.Base.Auths, "auth instances picking independently")
	burst := fs.Int("burst", def.Base.Assignments, "assignments in the burst")
	lag := fs.Duration("lag", def.Base.Lag, "age of the counts an auth instance sees")
	rates := fs.String("rates", joinRates(def.Rates), "comma-separated arrival rates (assignments/s) for the table and bars")
	courseRate := fs.Float64("course-rate", def.CourseRate, "arrival rate (assignments/s) of the course-of-the-burst panel")
	checkpoints := fs.Int("checkpoints", def.Checkpoints, "points on each course line")
	seed := fs.Uint64("seed", def.Base.Seed, "random seed (same seed, same figures)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errFlagParse
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *nodes < 1 || *auths < 1 || *burst < 1 || *checkpoints < 1 || *lag <= 0 || *courseRate <= 0 {
		return errors.New("-nodes, -auths, -burst, -checkpoints, -lag and -course-rate must be positive")
	}
	rs, err := parseRates(*rates)
	if err != nil {
		return err
	}
	cfg := def
	cfg.Base.Nodes, cfg.Base.Auths, cfg.Base.Assignments, cfg.Base.Lag, cfg.Base.Seed = *nodes, *auths, *burst, *lag, *seed
	// The auth service settles pending assignments after about one gossip
	// lag.
	cfg.Base.Settle = *lag
	cfg.Rates, cfg.CourseRate, cfg.Checkpoints = rs, *courseRate, *checkpoints

	start := time.Now()
	rep, err := balance.Run(cfg)
	if err != nil {
		return err
	}
	if err := rep.WritePNG(*out); err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Markdown())
	fmt.Fprintf(stderr, "wrote %s in %s\n", *out, time.Since(start).Round(time.Millisecond))
	return nil
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive number", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("-rates: at least one rate is required")
	}
	return out, nil
}

func joinRates(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatFloat(r, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}
