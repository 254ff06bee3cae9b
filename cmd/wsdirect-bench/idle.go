package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/idleconn"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
)

// idleCmd is "wsdirect-bench idle" (make bench-idle): the memory, accept
// CPU, connect rate and kernel slab of idle connections held by
// wsdirect-node (ws and wss, optionally next to a node built from an older
// revision), a bare gorilla echo and an nbio echo, side by side.
func idleCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("idle", "Holds idle connections to wsdirect-node (ws, wss), a bare gorilla echo and an nbio echo, one after another; RSS, CPU per accept, connect rate and kernel slab per connection, side by side (make bench-idle).", stderr)
	cfg := idleconn.DefaultConfig()
	var (
		servers, marks, sourceIPs, out, plotOut, fromJSON string
		asJSON, quiet                                     bool
	)
	var defIPs []string
	for _, ip := range cfg.SourceIPs {
		defIPs = append(defIPs, ip.String())
	}
	var defMarks []string
	for _, m := range cfg.Marks {
		defMarks = append(defMarks, strconv.Itoa(m))
	}
	serverIP := cfg.ServerIP.String()
	fs.StringVar(&cfg.RepoDir, "repo-dir", ".", "module checkout to build wsdirect-node and wsdirect-auth from")
	fs.StringVar(&cfg.OldRev, "node-old-rev", "", "also measure wsdirect-node built from this git revision of -repo-dir (old-node-ws, old-node-wss), next to today's tree")
	fs.StringVar(&servers, "servers", "", "servers to measure, in order, from "+strings.Join(idleconn.AllServers, ",")+" (default: "+strings.Join(cfg.Servers, ",")+", with the old-node ones first when -node-old-rev is set)")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "connections to each reference server (gorilla, nbio)")
	fs.IntVar(&cfg.NodeConns, "node-conns", cfg.NodeConns, "connections to each node")
	fs.StringVar(&marks, "marks", strings.Join(defMarks, ","), "connection counts at which the sweep samples")
	fs.BoolVar(&cfg.ScavengeAtMarks, "scavenge-at-marks", cfg.ScavengeAtMarks, "scavenge at every mark, not only the last")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "client processes (each may hold < 20,000 files)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "total connect rate per second")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "handshakes in flight at most, in total")
	fs.DurationVar(&cfg.HandshakeTimeout, "timeout", cfg.HandshakeTimeout, "timeout of one connect (auth request + upgrade)")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "pause after each connect step before sampling")
	fs.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "connections opened and closed before the baseline")
	fs.StringVar(&serverIP, "server-ip", serverIP, "loopback address of auth; the servers listen on the next one")
	fs.StringVar(&sourceIPs, "source-ips", strings.Join(defIPs, ","), "clients' local addresses, bound round-robin")
	fs.StringVar(&cfg.WorkDir, "work-dir", "", "keep built binaries and server logs here (default: a temporary directory, removed)")
	fs.StringVar(&out, "out", "", "also write the result as JSON to this file")
	fs.StringVar(&plotOut, "plot", "", "draw memory per connection against connections into this PNG")
	fs.StringVar(&fromJSON, "from-json", "", "print (and with -plot draw) a saved -out result instead of running")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.BoolVar(&quiet, "q", false, "no progress on stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fromJSON != "" {
		data, err := os.ReadFile(fromJSON)
		if err != nil {
			return err
		}
		var res idleconn.Result
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("idle: %s: %w", fromJSON, err)
		}
		return finishIdle(stdout, asJSON, &res, "", plotOut)
	}
	switch {
	case servers != "":
		cfg.Servers = splitList(servers)
	case cfg.OldRev != "":
		cfg.Servers = append([]string{idleconn.ServerOldNode, idleconn.ServerNode, idleconn.ServerOldNodeTLS, idleconn.ServerNodeTLS}, cfg.Servers[2:]...)
	}
	var err error
	if cfg.Marks, err = idleconn.ParseInts(marks); err != nil {
		return usageError{err: fmt.Errorf("-marks: %w", err)}
	}
	if cfg.SourceIPs, err = loadtest.ParseSourceIPs(sourceIPs); err != nil {
		return usageError{err: fmt.Errorf("-source-ips: %w", err)}
	}
	ips, err := loadtest.ParseSourceIPs(serverIP)
	if err != nil || len(ips) != 1 {
		return usageError{err: fmt.Errorf("-server-ip %q: want one IPv4 address", serverIP)}
	}
	cfg.ServerIP = ips[0]
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Command = []string{exe}
	if !quiet {
		cfg.Progress = stderr
	}
	res, err := idleconn.Run(ctx, cfg)
	if res != nil && len(res.Servers) > 0 {
		if eerr := finishIdle(stdout, asJSON, res, out, plotOut); eerr != nil {
			return eerr
		}
	}
	return err
}

func finishIdle(stdout io.Writer, asJSON bool, res *idleconn.Result, out, plotOut string) error {
	if out != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if plotOut != "" {
		if err := res.WritePNG(plotOut); err != nil {
			return err
		}
	}
	return printResult(stdout, asJSON, res)
}
