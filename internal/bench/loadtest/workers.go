package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// WorkerCommand is the subcommand under which a bench binary runs one
// worker: it reads a Config as JSON on stdin and writes a Report as JSON on
// stdout.
const WorkerCommand = "worker"

// RunWorkers splits cfg over workers child processes of exe ("exe worker")
// and merges their reports. Each worker opens its share of Conns at its share
// of Rate and starts the source-IP round-robin at a different address.
// Worker stderr (progress) goes to progress.
//
// Separate processes are how a run gets past the 20,000 open files one
// process may hold here; they also spread the client's CPU over cores.
func RunWorkers(ctx context.Context, cfg Config, workers int, exe string, progress io.Writer) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if workers < 1 {
		return nil, errors.New("loadtest: workers must be at least 1")
	}
	if workers > cfg.Conns {
		workers = cfg.Conns
	}
	if progress == nil {
		progress = io.Discard
	}
	type result struct {
		rep *Report
		err error
	}
	results := make([]result, workers)
	var wg sync.WaitGroup
	var progressMu sync.Mutex
	for w := 0; w < workers; w++ {
		wc := cfg
		wc.Conns = WorkerShare(cfg.Conns, workers, w)
		wc.Rate = cfg.Rate / float64(workers)
		wc.Concurrency = max(1, cfg.Concurrency/workers)
		wc.SourceOffset = cfg.SourceOffset + w
		input, err := json.Marshal(wc)
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, exe, WorkerCommand)
		cmd.Stdin = bytes.NewReader(input)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Stderr = &prefixWriter{w: progress, mu: &progressMu, prefix: fmt.Sprintf("[worker %d] ", w)}
		// Interrupt, not kill, on cancel: the worker closes its connections.
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("loadtest: start worker %d: %w", w, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			rep := NewReport()
			if derr := json.Unmarshal(stdout.Bytes(), rep); derr != nil {
				if err == nil {
					err = derr
				}
				results[w] = result{err: fmt.Errorf("worker %d: %w", w, err)}
				return
			}
			results[w] = result{rep: rep, err: err}
		}()
	}
	wg.Wait()
	merged := NewReport()
	var errs []error
	for _, r := range results {
		if r.rep != nil {
			merged.Merge(r.rep)
		}
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return merged, errors.Join(errs...)
}

// WorkerShare is worker w's part of total split over workers: the first
// total%workers workers take one more, so the parts add up to total.
func WorkerShare(total, workers, w int) int {
	n := total / workers
	if w < total%workers {
		n++
	}
	return n
}

// RunWorker is the body of the worker subcommand: Config from in, Report to
// out, progress to progress.
func RunWorker(ctx context.Context, in io.Reader, out, progress io.Writer) error {
	var cfg Config
	if err := json.NewDecoder(in).Decode(&cfg); err != nil {
		return fmt.Errorf("loadtest worker: read config: %w", err)
	}
	rep, err := Run(ctx, cfg, progress)
	if rep != nil {
		if eerr := json.NewEncoder(out).Encode(rep); eerr != nil {
			return eerr
		}
	}
	if errors.Is(err, context.Canceled) {
		return nil // an interrupted run still reports what it did
	}
	return err
}

// prefixWriter prefixes each write (a worker's progress line) and serializes
// writers sharing one destination.
type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if _, err := io.WriteString(p.w, p.prefix); err != nil {
			return 0, err
		}
		if _, err := p.w.Write(line); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
