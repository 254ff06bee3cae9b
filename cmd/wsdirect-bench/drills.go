package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/compare"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
)

// drillCmd is "wsdirect-bench drill <kill|drain|auth-restart|haproxy-kill>".
func drillCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("drill: name one of %s first, e.g. \"wsdirect-bench drill kill -clients 30000\"", strings.Join(compare.Drills, ", "))
	}
	fs := flag.NewFlagSet("drill "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("drill: unexpected arguments %v", fs.Args())
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
