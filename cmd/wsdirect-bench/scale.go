package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/scalerun"
)

// scaleCmd is "wsdirect-bench scale": a local cluster, many connections
// held through worker processes, per-node counts and memory, and the limits
// set and hit.
func scaleCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("scale", "Holds many connections over a local cluster; per-node counts, memory, limits set and hit (make bench-scale).", stderr)
	cfg := scalerun.DefaultConfig()
	var (
		sourceIPs string
		asJSON    bool
		jsonOut   string
		quiet     bool
	)
	var defIPs []string
	for _, ip := range cfg.SourceIPs {
		defIPs = append(defIPs, ip.String())
	}
	fs.StringVar(&cfg.BinDir, "bin-dir", "./bin", "directory with wsdirect-node and wsdirect-auth")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "node processes")
	fs.IntVar(&cfg.Auths, "auths", cfg.Auths, "auth processes (clients use the first)")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "every node's connection cap")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level of the cluster processes")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "connections to open and hold")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "client worker processes (each may hold < 20,000 files)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "total target connect rate per second (0 = as fast as -concurrency allows)")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "handshakes in flight at most, in total")
	fs.StringVar(&sourceIPs, "source-ips", strings.Join(defIPs, ","), "local source addresses bound round-robin, e.g. 127.0.0.2-127.0.0.9")
	fs.DurationVar(&cfg.HandshakeTimeout, "timeout", cfg.HandshakeTimeout, "timeout of one auth request + upgrade")
	fs.DurationVar(&cfg.Hold, "hold", cfg.Hold, "how long each worker holds its connections after connecting")
	fs.DurationVar(&cfg.SampleInterval, "sample-interval", cfg.SampleInterval, "pause between samples of every process")
	fs.BoolVar(&cfg.KeepDir, "keep-logs", false, "keep the cluster's keys and logs directory")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&jsonOut, "json-out", "", "also write the report as JSON to this file")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ips, err := loadtest.ParseSourceIPs(sourceIPs)
	if err != nil {
		return err
	}
	cfg.SourceIPs = ips
	if cfg.WorkerExe, err = os.Executable(); err != nil {
		return err
	}
	if !quiet {
		cfg.Progress = stderr
	}
	rep, err := scalerun.Run(ctx, cfg)
	if rep != nil {
		if eerr := printResult(stdout, asJSON, rep); eerr != nil {
			return eerr
		}
		if jsonOut != "" {
			data, eerr := json.MarshalIndent(rep, "", "  ")
			if eerr == nil {
				eerr = os.WriteFile(jsonOut, append(data, '\n'), 0o644)
			}
			if eerr != nil {
				return eerr
			}
		}
	}
	return err
}
