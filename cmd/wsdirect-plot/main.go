// Command wsdirect-plot draws the figures in docs/benchmarks.md.
//
//	go run ./cmd/wsdirect-plot balance -out docs/img/balance.png
//	go run ./cmd/wsdirect-plot rebalance -in rebalance.json -out docs/img/rebalance.png
//
// "balance" simulates a burst of assignments under stale gossip for every
// assignment strategy (package internal/bench/balance, driving
// balance.SimulateBurst), writes the PNG and prints the Markdown table that
// goes with it. "rebalance" draws clients per node and reconnects per second
// over a scale-out from the JSON result of "wsdirect-bench rebalance -out".
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/balance"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/compare"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: wsdirect-plot <command> [flags]

Commands:
  balance     balance of a burst of assignments under stale gossip, per strategy
  rebalance   clients per node over a scale-out, from "wsdirect-bench rebalance -out"

"wsdirect-plot balance -h" and "wsdirect-plot rebalance -h" list their flags.
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
	case "balance", "rebalance":
		cmd := balanceCmd
		if args[0] == "rebalance" {
			cmd = rebalanceCmd
		}
		if err := cmd(args[1:], stdout, stderr); err != nil {
			switch {
			case errors.Is(err, flag.ErrHelp):
				return 0
			case !errors.Is(err, errFlagParse): // else flag printed it
				fmt.Fprintf(stderr, "wsdirect-plot %s: %v\n", args[0], err)
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

func rebalanceCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wsdirect-plot rebalance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: wsdirect-plot rebalance [flags]

Draws clients per node and reconnects per second over a scale-out, from the
JSON result that "wsdirect-bench rebalance -out FILE" writes, and prints the
result's table.

flags:
`)
		fs.PrintDefaults()
	}
	in := fs.String("in", "", "JSON result of wsdirect-bench rebalance (required)")
	out := fs.String("out", "docs/img/rebalance.png", "PNG file to write")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errFlagParse
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *in == "" {
		return errors.New("-in is required")
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var res compare.RebalanceResult
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if err := res.WritePNG(*out); err != nil {
		return err
	}
	res.WriteTable(stdout)
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return nil
}
