package scalerun

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Config describes one scale run. Start from DefaultConfig; Run rejects
// invalid fields.
type Config struct {
	// BinDir holds wsdirect-node and wsdirect-auth. Required.
	BinDir string
	// WorkerExe is a program that runs a loadtest worker when called as
	// "WorkerExe worker" (wsdirect-bench does). Required.
	WorkerExe string

	// Nodes and Auths are the node and auth process counts.
	Nodes int
	Auths int
	// MaxConns is every node's -max-conns (its connection cap).
	MaxConns int
	// LogLevel of the cluster processes (debug, info, warn or error).
	LogLevel string

	// Conns is how many connections to open and hold, over Workers client
	// processes (each holds Conns/Workers and must stay under the per-process
	// file limit).
	Conns   int
	Workers int
	// Rate is the total target connect rate per second (0: as fast as
	// Concurrency allows); Concurrency bounds handshakes in flight, in total.
	Rate        float64
	Concurrency int
	// SourceIPs are local addresses the clients bind round-robin; empty
	// lets the kernel pick.
	SourceIPs []netip.Addr
	// HandshakeTimeout bounds one auth request plus upgrade.
	HandshakeTimeout time.Duration
	// Hold is how long each worker keeps its connections after its connect
	// phase; the run samples throughout. 0 closes them at once.
	Hold time.Duration
	// SampleInterval is the pause between samples of every process.
	SampleInterval time.Duration
	// Settle is the pause after the cluster is ready and before the baseline
	// sample, so start-up garbage does not count as per-connection memory;
	// 0 means no pause.
	Settle time.Duration

	// KeepDir keeps the cluster's keys and logs directory.
	KeepDir bool
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
}

// DefaultConfig is the aggregate run of docs/benchmarks.md: 150,000
// connections over 10 node processes and 10 client workers.
func DefaultConfig() Config {
	return Config{
		// 10 node processes: 150,000 / 10 = 15,000 each, under both the cap
		// below and the 20,000-file limit of one process.
		Nodes: 10,
		// One auth process: it holds only keep-alive connections.
		Auths: 1,
		// 18,500 leaves the node room under its 20,000 files for its
		// listener, gossip sockets and logs, and still exceeds the even share.
		MaxConns: 18_500,
		// warn: 150,000 info lines per run would cost CPU and disk.
		LogLevel: "warn",
		Conns:    150_000,
		// 10 workers hold 15,000 connections each (plus a few auth
		// keep-alives), under the 20,000-file limit.
		Workers: 10,
		// 2,000/s: fast enough for 150,000 in under two minutes, slow
		// enough for a shared 2-core machine not to time handshakes out.
		Rate:        2000,
		Concurrency: 512,
		// 8 source addresses: 8 separate ephemeral-port spaces per node.
		SourceIPs: []netip.Addr{
			netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"),
			netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.5"),
			netip.MustParseAddr("127.0.0.6"), netip.MustParseAddr("127.0.0.7"),
			netip.MustParseAddr("127.0.0.8"), netip.MustParseAddr("127.0.0.9"),
		},
		// 30 s, generous on a loaded machine: a handshake that has not
		// finished by then counts as a timeout.
		HandshakeTimeout: 30 * time.Second,
		// 30 s of hold: several samples at the plateau.
		Hold:           30 * time.Second,
		SampleInterval: 2 * time.Second,
		Settle:         2 * time.Second,
	}
}

// maxFilesPerProcess is the hard RLIMIT_NOFILE of every process here.
const maxFilesPerProcess = 20_000

func (c *Config) validate() error {
	switch {
	case c.BinDir == "":
		return errors.New("scalerun: BinDir is required")
	case c.WorkerExe == "":
		return errors.New("scalerun: WorkerExe is required")
	case c.Nodes < 1:
		return fmt.Errorf("scalerun: Nodes must be at least 1, got %d", c.Nodes)
	case c.Auths < 1:
		return fmt.Errorf("scalerun: Auths must be at least 1, got %d", c.Auths)
	case c.MaxConns < 1:
		return fmt.Errorf("scalerun: MaxConns must be at least 1, got %d", c.MaxConns)
	case c.LogLevel == "":
		return errors.New("scalerun: LogLevel is required")
	case c.Conns < 1:
		return fmt.Errorf("scalerun: Conns must be at least 1, got %d", c.Conns)
	case c.Workers < 1:
		return fmt.Errorf("scalerun: Workers must be at least 1, got %d", c.Workers)
	case c.Rate < 0:
		return fmt.Errorf("scalerun: Rate must not be negative, got %g", c.Rate)
	case c.Concurrency < c.Workers:
		return fmt.Errorf("scalerun: Concurrency (%d) must be at least Workers (%d)", c.Concurrency, c.Workers)
	case c.HandshakeTimeout <= 0:
		return errors.New("scalerun: HandshakeTimeout must be positive")
	case c.Hold < 0 || c.Settle < 0:
		return errors.New("scalerun: Hold and Settle must not be negative")
	case c.SampleInterval <= 0:
		return errors.New("scalerun: SampleInterval must be positive")
	}
	// Refuse a plan that cannot work rather than let it fail halfway: a
	// worker holds its share plus up to its share of Concurrency auth
	// keep-alives.
	perWorker := (c.Conns+c.Workers-1)/c.Workers + (c.Concurrency+c.Workers-1)/c.Workers
	if perWorker >= maxFilesPerProcess {
		return fmt.Errorf("scalerun: %d connections over %d workers is %d files per worker, over the %d-file process limit; use more workers",
			c.Conns, c.Workers, perWorker, maxFilesPerProcess)
	}
	if c.Conns > c.Nodes*c.MaxConns {
		return fmt.Errorf("scalerun: %d connections exceed %d nodes x %d max-conns", c.Conns, c.Nodes, c.MaxConns)
	}
	return nil
}
