package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/compare"
)

// compareCmd is "wsdirect-bench compare" (make bench-compare): the same
// workload against direct assignment, HAProxy mode http and HAProxy mode
// tcp, with ratios to direct.
func compareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", "Runs the same workload via direct assignment, HAProxy mode http and mode tcp; ratios to direct (make bench-compare).", stderr)
	var (
		cfg       = compare.DefaultCompareConfig()
		paths     string
		sourceIPs string
		asJSON    bool
		quiet     bool
		fromJSON  string
	)
	fs.StringVar(&cfg.Env.BinDir, "bin-dir", "./bin", "directory with wsdirect-node and wsdirect-auth")
	fs.StringVar(&cfg.Env.OldBinDir, "old-bin-dir", "", "directory with an older build of wsdirect-node and wsdirect-auth, run by the paths "+strings.Join(compare.OldPaths, ",")+" (e.g. -paths direct-old,direct)")
	fs.StringVar(&cfg.Env.HAProxyBinary, "haproxy", "", "haproxy binary (default $WSDIRECT_HAPROXY, /usr/sbin/haproxy or PATH)")
	fs.IntVar(&cfg.Env.Nodes, "nodes", cfg.Env.Nodes, "node processes behind every path")
	fs.StringVar(&sourceIPs, "source-ips", strings.Join(cfg.Env.SourceIPs, ","), "HAProxy mode http \"source\" addresses (comma list)")
	fs.IntVar(&cfg.Env.HAProxyMaxConn, "haproxy-maxconn", cfg.Env.HAProxyMaxConn, "HAProxy maxconn (2 descriptors per connection; the hard limit is 20,000 files)")
	fs.StringVar(&paths, "paths", strings.Join(cfg.Paths, ","), "paths to run, the baseline first: "+strings.Join(compare.Paths, ",")+" or "+strings.Join(compare.TLSPaths, ",")+"; "+strings.Join(compare.OldPaths, ",")+" run -old-bin-dir")
	fs.BoolVar(&cfg.Warmup, "warmup", cfg.Warmup, "run the first path once, unmeasured, before the measured runs, so that it does not alone pay for growing this process")
	fs.BoolVar(&cfg.ClassicKeyExchange, "classic-kex", cfg.ClassicKeyExchange, "TLS clients offer X25519 only (HAProxy 2.6 on OpenSSL 3.0 has no post-quantum key exchange)")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "connections per path")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "target connect rate per second (0 = as fast as -concurrency allows: the path's full-flow rate)")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "handshakes in flight at most")
	fs.Float64Var(&cfg.MsgRate, "msg-rate", cfg.MsgRate, "echoed messages per second per connection")
	fs.IntVar(&cfg.MsgSize, "msg-size", cfg.MsgSize, "message size in bytes (>= 8)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the message phase")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "client worker processes (default one per 8,000 connections)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.BoolVar(&quiet, "q", false, "no progress on stderr")
	fs.StringVar(&fromJSON, "from-json", "", "print the table of a saved -json result instead of running")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fromJSON != "" {
		data, err := os.ReadFile(fromJSON)
		if err != nil {
			return err
		}
		var res compare.CompareResult
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("compare: %s: %w", fromJSON, err)
		}
		if res.Direct() == nil {
			return fmt.Errorf("compare: %s has no direct path", fromJSON)
		}
		res.WriteTable(stdout)
		return nil
	}
	cfg.Paths = splitList(paths)
	cfg.Env.SourceIPs = splitList(sourceIPs)
	if cfg.Conns <= 0 {
		return fmt.Errorf("compare: -conns must be positive, got %d", cfg.Conns)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.WorkerExe = exe
	if !quiet {
		cfg.Progress = stderr
		cfg.Env.Logf = func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	}
	res, err := compare.Compare(ctx, cfg)
	if res != nil && len(res.Paths) > 0 {
		if eerr := printResult(stdout, asJSON, res); eerr != nil {
			return eerr
		}
	}
	return err
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
