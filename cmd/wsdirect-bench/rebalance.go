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

// rebalanceCmd is "wsdirect-bench rebalance" (make bench-rebalance): a
// scale-out under held clients, and how the old nodes move the new one its
// share.
func rebalanceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rebalance", "Holds managed clients on a local cluster, starts one more node and measures the rebalance: time to max/mean ≤ goal, clients moved against the least, clients lost, peak reconnect and auth rates (make bench-rebalance).", stderr)
	var (
		cfg       = compare.DefaultRebalanceConfig()
		clientIPs string
		inProcess bool
		asJSON    bool
		out       string
		quiet     bool
		tf        = compare.DefaultTerraformScaleOut()
	)
	fs.StringVar(&cfg.Env.BinDir, "bin-dir", "./bin", "directory with wsdirect-node and wsdirect-auth")
	fs.IntVar(&cfg.Env.Nodes, "nodes", cfg.Env.Nodes, "node processes before the scale-out (one more joins)")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "managed clients held open")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "first-connect rate per second")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "client processes (default one per 8,000 clients)")
	fs.BoolVar(&inProcess, "in-process", false, "run the clients in this process (at most ~19,000)")
	fs.StringVar(&clientIPs, "client-ips", "127.0.3.1-127.0.3.8", "loopback addresses the clients bind, round-robin")
	fs.DurationVar(&cfg.Quiet, "quiet", cfg.Quiet, "how long the clients stay connected before the new node starts")
	fs.Float64Var(&cfg.MaxRate, "max-rate", cfg.MaxRate, "every node's -rebalance-max-rate: clients moved per second across the cluster")
	fs.Float64Var(&cfg.Goal, "goal", cfg.Goal, "the max/mean to reach")
	fs.DurationVar(&cfg.GoalTime, "goal-time", cfg.GoalTime, "the time allowed to reach -goal (reported as met or missed)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "give up when -goal is not reached this long after the new node started")
	fs.DurationVar(&cfg.Watch, "watch", cfg.Watch, "keep watching this long after -goal was reached")
	fs.DurationVar(&cfg.Sample, "sample", cfg.Sample, "interval of the time series")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON (with the time series)")
	fs.StringVar(&out, "out", "", "also write the JSON result to this file (for wsdirect-plot rebalance)")
	fs.BoolVar(&quiet, "q", false, "no narrative on stderr")
	fs.StringVar(&tf.Terraform, "terraform", "", "run the cluster through this terraform binary: modules/cluster applied on the local cloud, node_count n then n+1 (default: local processes started directly)")
	fs.StringVar(&tf.RepoDir, "repo-dir", ".", "with -terraform: this repository's root (binaries, provider and modules/cluster are built and taken from it)")
	fs.StringVar(&tf.WorkDir, "work-dir", "", "with -terraform: an empty directory for the build, the local cloud and the configuration (default: a new temporary one, removed after)")
	fs.IntVar(&tf.Users, "users", tf.Users, "with -terraform: users in auth's users file, the clients spread over them")
	fs.IntVar(&tf.BcryptCost, "bcrypt-cost", tf.BcryptCost, "with -terraform: bcrypt cost of the users' hashes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if tf.Terraform != "" {
		if tf.WorkDir == "" {
			dir, err := os.MkdirTemp("", "wsdirect-rebalance-tf-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			tf.WorkDir = dir
		}
		abs, err := filepath.Abs(tf.RepoDir)
		if err != nil {
			return err
		}
		tf.RepoDir = abs
		cfg.Terraform = &tf
	}
	ips, err := loadtest.ParseSourceIPs(clientIPs)
	if err != nil {
		return fmt.Errorf("rebalance: -client-ips: %w", err)
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
	res, err := compare.Rebalance(ctx, cfg)
	if res != nil {
		if serr := saveAndPrint(stdout, out, asJSON, res); serr != nil {
			return serr
		}
	}
	return err
}
