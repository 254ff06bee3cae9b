package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/compare"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
)

// fleetopCmd is "wsdirect-bench fleetop" (make bench-upgrade-terraform,
// make bench-scalein-terraform): a rolling upgrade or a scale-in of
// modules/cluster through terraform apply on the local cloud, under held
// clients.
func fleetopCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fleetop", "Applies modules/cluster on the local cloud, holds managed clients on it, then applies a rolling upgrade (a new release: every node and the auth host replaced) or a scale-in (node_count - 1), and measures clients lost, the longest time each client was without a connection (p99, max), close codes, ready nodes, the peak auth request rate and the total time.", stderr)
	var (
		cfg       = compare.DefaultFleetOpConfig()
		clientIPs string
		inProcess bool
		asJSON    bool
		out       string
		quiet     bool
	)
	fs.StringVar(&cfg.Op, "op", compare.OpUpgrade, `the operation: "upgrade" or "scale-in"`)
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "node_count before the operation")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "managed clients held open")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "first-connect rate per second")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "client processes (default one per 8,000 clients)")
	fs.BoolVar(&inProcess, "in-process", false, "run the clients in this process (at most ~19,000)")
	fs.StringVar(&clientIPs, "client-ips", "127.0.3.1-127.0.3.8", "loopback addresses the clients bind, round-robin")
	fs.DurationVar(&cfg.Quiet, "quiet", cfg.Quiet, "how long the clients stay connected before the operation")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on the apply and the wait after it for every client")
	fs.DurationVar(&cfg.Sample, "sample", cfg.Sample, "interval of the time series")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON (with the time series)")
	fs.StringVar(&out, "out", "", "also write the JSON result to this file")
	fs.BoolVar(&quiet, "q", false, "no narrative on stderr")
	fs.StringVar(&cfg.Terraform.Terraform, "terraform", "", "the terraform binary (required)")
	fs.StringVar(&cfg.Terraform.RepoDir, "repo-dir", ".", "this repository's root (binaries, provider and modules/cluster are built and taken from it)")
	fs.StringVar(&cfg.Terraform.WorkDir, "work-dir", "", "an empty directory for the build, the local cloud and the configuration (default: a new temporary one, removed after)")
	fs.IntVar(&cfg.Terraform.Users, "users", cfg.Terraform.Users, "users in auth's users file, the clients spread over them")
	fs.IntVar(&cfg.Terraform.BcryptCost, "bcrypt-cost", cfg.Terraform.BcryptCost, "bcrypt cost of the users' hashes")
	fs.IntVar(&cfg.Terraform.NodeDrainRate, "drain-rate", 0, "modules/cluster's drain_rate: clients each node closes per second when it drains (default: the binary's)")
	fs.DurationVar(&cfg.Terraform.NodeDrainDeadline, "drain-deadline", 0, "modules/cluster's drain_deadline, whole seconds (default: the binary's)")
	fs.DurationVar(&cfg.Terraform.Cloud.MaxStopTimeout, "max-stop-timeout", cfg.Terraform.Cloud.MaxStopTimeout, "the local cloud's cap on a unit's stop (EC2's shutdown grace); at least the node's drain deadline + 30 s")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Terraform.Terraform == "" {
		return usageError{err: fmt.Errorf("fleetop: -terraform is required")}
	}
	ips, err := loadtest.ParseSourceIPs(clientIPs)
	if err != nil {
		return usageError{err: fmt.Errorf("fleetop: -client-ips: %w", err)}
	}
	cfg.SourceIPs = ips
	if cfg.Terraform.WorkDir == "" {
		dir, err := os.MkdirTemp("", "wsdirect-fleetop-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.Terraform.WorkDir = dir
	}
	abs, err := filepath.Abs(cfg.Terraform.RepoDir)
	if err != nil {
		return err
	}
	cfg.Terraform.RepoDir = abs
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
	res, err := compare.FleetOp(ctx, cfg)
	if res != nil {
		if serr := saveAndPrint(stdout, out, asJSON, res); serr != nil {
			return serr
		}
	}
	return err
}
