package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/compare"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
)

// drillCmd is "wsdirect-bench drill <kill|drain|auth-restart|haproxy-kill>".
func drillCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	drillUsage := fmt.Sprintf("usage: wsdirect-bench drill <%s> [flags]\n\nScripted failure drills with managed clients. \"wsdirect-bench drill <drill> -h\" lists a drill's flags.\n",
		strings.Join(compare.Drills, "|"))
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		fmt.Fprint(stderr, drillUsage)
		return flag.ErrHelp
	case len(args) == 0 || strings.HasPrefix(args[0], "-"):
		fmt.Fprint(stderr, drillUsage)
		return usageError{err: errors.New("drill: name a drill first, e.g. \"wsdirect-bench drill kill -clients 30000\"")}
	case !slices.Contains(compare.Drills, args[0]):
		fmt.Fprint(stderr, drillUsage)
		return usageError{err: fmt.Errorf("drill: unknown drill %q", args[0])}
	}
	fs := newFlagSet("drill "+args[0], drillSummaries[args[0]], stderr)
	cfg := compare.DefaultDrillConfig(args[0])
	var (
		asJSON    bool
		inProcess bool
		sourceIPs string
		clientIPs string
		quiet     bool
	)
	fs.StringVar(&cfg.Env.BinDir, "bin-dir", "./bin", "directory with wsdirect-node and wsdirect-auth")
	fs.StringVar(&cfg.Env.HAProxyBinary, "haproxy", "", "haproxy binary for haproxy-kill (default $WSDIRECT_HAPROXY, /usr/sbin/haproxy or PATH)")
	fs.IntVar(&cfg.Env.Nodes, "nodes", cfg.Env.Nodes, "node processes")
	fs.IntVar(&cfg.Env.HAProxyMaxConn, "haproxy-maxconn", cfg.Env.HAProxyMaxConn, "HAProxy maxconn for haproxy-kill")
	fs.StringVar(&sourceIPs, "source-ips", strings.Join(cfg.Env.SourceIPs, ","), "HAProxy \"source\" addresses for haproxy-kill (comma list)")
	fs.StringVar(&clientIPs, "client-ips", "127.0.3.1-127.0.3.8", "loopback addresses the clients bind, round-robin (each has its own ephemeral ports)")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "managed clients")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "first-connect rate per second")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "client processes (default one per 8,000 clients)")
	fs.BoolVar(&inProcess, "in-process", false, "run the clients in this process (at most ~19,000)")
	fs.DurationVar(&cfg.RecoverTimeout, "timeout", cfg.RecoverTimeout, "how long to wait for the drill's outcome")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "auth-restart / haproxy-kill: how long to keep watching after the event")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.BoolVar(&quiet, "q", false, "no narrative on stderr")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg.Env.SourceIPs = splitList(sourceIPs)
	ips, err := loadtest.ParseSourceIPs(clientIPs)
	if err != nil {
		return fmt.Errorf("drill: -client-ips: %w", err)
	}
	cfg.SourceIPs = ips
	if !inProcess {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.WorkerArgv = []string{exe, compare.FleetWorkerCommand}
	}
	if !quiet {
		cfg.Progress = stderr
	}
	res, err := compare.Drill(ctx, cfg)
	if res != nil {
		if eerr := printResult(stdout, asJSON, res); eerr != nil {
			return eerr
		}
	}
	return err
}

// drillSummaries is what each drill's -h says it does.
var drillSummaries = map[string]string{
	compare.DrillKill:        "SIGKILLs the node holding the most clients and times their move to the other nodes through auth.",
	compare.DrillDrain:       "Drains the busiest node (SIGTERM) and times it to empty.",
	compare.DrillAuthRestart: "Restarts auth while every client is connected and counts the connections that dropped (the goal is none).",
	compare.DrillHAProxyKill: "SIGKILLs HAProxy in front of the nodes (mode http) and counts the clients lost.",
}
