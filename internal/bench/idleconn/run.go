package idleconn

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/scavenge"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// Result is a whole side-by-side run.
type Result struct {
	CPUs    int            `json:"cpus"`
	OldRev  string         `json:"old_rev,omitempty"`
	Rate    float64        `json:"rate"`
	Workers int            `json:"workers"`
	Servers []ServerResult `json:"servers"`
}

// ServerResult is what one server measured.
type ServerResult struct {
	Server string `json:"server"`
	// Target is the connections asked for, Held those held at the end.
	Target int `json:"target"`
	Held   int `json:"held"`
	// Failed connects and Dropped connections, over the whole run.
	Failed     int    `json:"failed"`
	Dropped    int    `json:"dropped"`
	FirstError string `json:"first_error,omitempty"`
	// RSSBefore is the server's VmRSS after the warm-up and a scavenge.
	RSSBefore int64 `json:"rss_before_bytes"`
	// Marks is the sweep; the last mark is the server's full count.
	Marks []Mark `json:"marks"`
	// ConnectSeconds is the time spent in connect steps, CPUSeconds the
	// server's CPU time (user + system) in them.
	ConnectSeconds float64 `json:"connect_seconds"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	// LoadBefore and LoadAfter are the 1-minute load averages around the
	// server's run.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
	// Stats is the server's runtime line at the last scavenge.
	Stats string `json:"stats,omitempty"`
}

// Mark is one point of the sweep.
type Mark struct {
	Conns int `json:"conns"`
	// RSS is VmRSS when the mark was reached and settled, RSSScavenged
	// after a scavenge (0 when none was asked for).
	RSS          int64 `json:"rss_bytes"`
	RSSScavenged int64 `json:"rss_scavenged_bytes,omitempty"`
	// Kernel is slab growth per connection over the connect steps up to
	// this mark (both ends of every connection).
	Kernel KernelPerConn `json:"kernel_per_conn"`
}

// Last is the server's full-count mark.
func (s *ServerResult) Last() Mark { return s.Marks[len(s.Marks)-1] }

// RawPerConn and ScavengedPerConn are RSS growth per connection at mark m.
func (s *ServerResult) RawPerConn(m Mark) float64 {
	return float64(m.RSS-s.RSSBefore) / float64(m.Conns)
}

func (s *ServerResult) ScavengedPerConn(m Mark) float64 {
	if m.RSSScavenged == 0 {
		return 0
	}
	return float64(m.RSSScavenged-s.RSSBefore) / float64(m.Conns)
}

// CPUPerAccept is the server's CPU time per connection over the connect
// steps; ConnectRate connections per second over them.
func (s *ServerResult) CPUPerAccept() time.Duration {
	if s.Held == 0 {
		return 0
	}
	return time.Duration(s.CPUSeconds / float64(s.Held) * float64(time.Second))
}

func (s *ServerResult) ConnectRate() float64 {
	if s.ConnectSeconds == 0 {
		return 0
	}
	return float64(s.Held) / s.ConnectSeconds
}

// Run measures every server of cfg, one after another.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	work := cfg.WorkDir
	if work == "" {
		d, err := os.MkdirTemp("", "wsdirect-idleconn-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		work = d
	}
	res := &Result{CPUs: runtime.NumCPU(), OldRev: cfg.OldRev, Rate: cfg.Rate, Workers: cfg.Workers}
	bins, err := buildAll(ctx, cfg, work)
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.Servers {
		fmt.Fprintf(cfg.Progress, "== %s: %d connections\n", s, cfg.connsFor(s))
		sr, err := measure(ctx, cfg, s, bins, work)
		if sr != nil {
			res.Servers = append(res.Servers, *sr)
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", s, err)
		}
		last := sr.Last()
		fmt.Fprintf(cfg.Progress, "   %s: %d held, %.0f B/conn raw, %.0f B/conn scavenged, %v CPU/accept, %.0f conns/s, kernel %.0f B/conn, load %.2f-%.2f\n",
			s, sr.Held, sr.RawPerConn(last), sr.ScavengedPerConn(last), sr.CPUPerAccept().Round(time.Microsecond), sr.ConnectRate(), last.Kernel.Floor(), sr.LoadBefore, sr.LoadAfter)
	}
	return res, nil
}

// buildAll builds the node binaries the servers need: bin/ from RepoDir
// (node and auth), bin-old/ from OldRev (node; auth from bin/).
func buildAll(ctx context.Context, cfg Config, work string) (map[bool]string, error) {
	bins := map[bool]string{}
	var needNew, needOld bool
	for _, s := range cfg.Servers {
		needNew = needNew || isNode(s)
		needOld = needOld || isOld(s)
	}
	if !needNew {
		return bins, nil
	}
	newDir := filepath.Join(work, "bin")
	fmt.Fprintf(cfg.Progress, "building wsdirect-node (with the scavenge hook) and wsdirect-auth from %s\n", cfg.RepoDir)
	if err := buildNode(ctx, cfg.RepoDir, newDir, true); err != nil {
		return nil, err
	}
	bins[false] = newDir
	if needOld {
		src := filepath.Join(work, "src-old")
		oldDir := filepath.Join(work, "bin-old")
		fmt.Fprintf(cfg.Progress, "building wsdirect-node from revision %s\n", cfg.OldRev)
		if err := exportRev(ctx, cfg.RepoDir, cfg.OldRev, src); err != nil {
			return nil, err
		}
		if err := buildNode(ctx, src, oldDir, false); err != nil {
			return nil, err
		}
		// The old node joins today's auth: the gossip and token formats
		// are the cluster's contract between versions.
		if err := os.Symlink(filepath.Join(newDir, localcluster.AuthBinary), filepath.Join(oldDir, localcluster.AuthBinary)); err != nil {
			return nil, err
		}
		bins[true] = oldDir
	}
	return bins, nil
}

// server is one running server under measurement.
type server struct {
	pid    int
	socket string
	client ClientConfig // URL or auth fields set
	stop   func()
}

func startServer(ctx context.Context, cfg Config, name string, bins map[bool]string, work string) (*server, error) {
	socket := filepath.Join(work, name+".sock")
	_ = os.Remove(socket)
	if isNode(name) {
		lc := localcluster.DefaultConfig()
		lc.BinDir = bins[isOld(name)]
		lc.Nodes, lc.Auths = 1, 1
		lc.AuthIPBase, lc.NodeIPBase = cfg.ServerIP, cfg.ServerIP.Next()
		lc.Dir = filepath.Join(work, name)
		lc.KeepDir = true
		lc.MaxConns = maxFilesPerProcess - 500
		lc.LogLevel = "warn"
		lc.TLS = isTLS(name)
		lc.NodeEnv = []string{scavenge.EnvSocket + "=" + socket}
		cl, err := localcluster.Start(ctx, lc)
		if err != nil {
			return nil, err
		}
		return &server{
			pid:    cl.Nodes[0].PID(),
			socket: socket,
			client: ClientConfig{AuthURL: cl.AuthURL(), Username: cl.Username(), Password: cl.Password(), CAFile: cl.CAFile()},
			stop:   cl.Stop,
		}, nil
	}
	args := append(append([]string(nil), cfg.Command[1:]...), ServerCommand, name, net.JoinHostPort(cfg.ServerIP.Next().String(), "0"), socket)
	cmd := exec.Command(cfg.Command[0], args...)
	logf, err := os.Create(filepath.Join(work, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	stop := func() {
		stdin.Close()
		waitOrKill(cmd, 10*time.Second)
		logf.Close()
	}
	// The first line starting ADDR (a library may print before it).
	var (
		line, addr string
		ok         bool
	)
	br := bufio.NewReader(stdout)
	for i := 0; i < 20 && err == nil && !ok; i++ {
		line, err = readLine(br, 30*time.Second)
		addr, ok = strings.CutPrefix(line, "ADDR ")
	}
	if err != nil || !ok {
		stop()
		return nil, fmt.Errorf("%s server said %q (%v); log %s", name, line, err, logf.Name())
	}
	return &server{pid: cmd.Process.Pid, socket: socket, client: ClientConfig{URL: "ws://" + addr + wire.WSPath}, stop: stop}, nil
}

func waitOrKill(cmd *exec.Cmd, d time.Duration) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
	}
}

func readLine(r *bufio.Reader, timeout time.Duration) (string, error) {
	type got struct {
		s   string
		err error
	}
	ch := make(chan got, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- got{strings.TrimSpace(s), err}
	}()
	select {
	case g := <-ch:
		return g.s, g.err
	case <-time.After(timeout):
		return "", fmt.Errorf("no answer in %v", timeout)
	}
}

// clientProc is one running client worker.
type clientProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func (c *clientProc) do(line string, timeout time.Duration) (ClientStatus, error) {
	var st ClientStatus
	if _, err := fmt.Fprintln(c.stdin, line); err != nil {
		return st, err
	}
	ans, err := readLine(c.out, timeout)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(ans), &st); err != nil {
		return st, fmt.Errorf("worker answered %q: %w", ans, err)
	}
	if st.Error != "" {
		return st, errors.New(st.Error)
	}
	return st, nil
}

func startClients(cfg Config, cc ClientConfig, work, name string) ([]*clientProc, func(), error) {
	var procs []*clientProc
	stop := func() {
		for _, p := range procs {
			p.stdin.Close()
		}
		for _, p := range procs {
			waitOrKill(p.cmd, 30*time.Second)
		}
	}
	for w := 0; w < cfg.Workers; w++ {
		wc := cc
		wc.SourceIPs = cfg.SourceIPs
		wc.SourceOffset = w
		wc.Rate = cfg.Rate / float64(cfg.Workers)
		wc.Concurrency = cfg.Concurrency / cfg.Workers
		wc.HandshakeTimeout = cfg.HandshakeTimeout
		conf, err := json.Marshal(wc)
		if err != nil {
			stop()
			return nil, nil, err
		}
		args := append(append([]string(nil), cfg.Command[1:]...), ClientCommand)
		cmd := exec.Command(cfg.Command[0], args...)
		logf, err := os.Create(filepath.Join(work, fmt.Sprintf("%s-client-%d.log", name, w)))
		if err != nil {
			stop()
			return nil, nil, err
		}
		cmd.Stderr = logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stdin, err := cmd.StdinPipe()
		if err == nil {
			var stdout io.ReadCloser
			if stdout, err = cmd.StdoutPipe(); err == nil {
				if err = cmd.Start(); err == nil {
					procs = append(procs, &clientProc{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)})
					_, err = fmt.Fprintf(stdin, "%s\n", conf)
				}
			}
		}
		logf.Close() // the child has its own descriptor
		if err != nil {
			stop()
			return nil, nil, err
		}
	}
	return procs, stop, nil
}

// openAll takes every worker to its share of total and returns the summed
// status.
func openAll(procs []*clientProc, total int, timeout time.Duration) (ClientStatus, error) {
	var (
		mu  sync.Mutex
		sum ClientStatus
		wg  sync.WaitGroup
		ers []error
	)
	for w, p := range procs {
		share := total / len(procs)
		if w < total%len(procs) {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := p.do(fmt.Sprintf("open %d", share), timeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ers = append(ers, fmt.Errorf("worker %d: %w", w, err))
				return
			}
			sum.Open += st.Open
			sum.Failed += st.Failed
			sum.Dropped += st.Dropped
			if sum.FirstError == "" {
				sum.FirstError = st.FirstError
			}
		}()
	}
	wg.Wait()
	return sum, errors.Join(ers...)
}

const scavengeTimeout = 60 * time.Second

func measure(ctx context.Context, cfg Config, name string, bins map[bool]string, work string) (*ServerResult, error) {
	sr := &ServerResult{Server: name, Target: cfg.connsFor(name), LoadBefore: loadAvg()}
	srv, err := startServer(ctx, cfg, name, bins, work)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	if _, err := scavenge.Request(srv.socket, "stats", 10*time.Second); err != nil {
		return nil, fmt.Errorf("the server answers no scavenge request at %s: %w", srv.socket, err)
	}
	procs, stopClients, err := startClients(cfg, srv.client, work, name)
	if err != nil {
		return nil, err
	}
	defer stopClients()
	// A step may take its connections' share of the rate, plus a timeout
	// for the last ones.
	stepTimeout := func(n int) time.Duration {
		return time.Duration(float64(n)/cfg.Rate*float64(time.Second))*2 + 2*cfg.HandshakeTimeout
	}
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	if cfg.Warmup > 0 {
		st, err := openAll(procs, cfg.Warmup, stepTimeout(cfg.Warmup))
		if err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		if st.Open < cfg.Warmup {
			return nil, fmt.Errorf("warm-up: %d of %d connections (first error: %s)", st.Open, cfg.Warmup, st.FirstError)
		}
		for w, p := range procs {
			if _, err := p.do("close", 30*time.Second); err != nil {
				return nil, fmt.Errorf("worker %d: close: %w", w, err)
			}
		}
		if err := sleep(cfg.Settle); err != nil {
			return nil, err
		}
	}
	if _, err := scavenge.Request(srv.socket, "scavenge", scavengeTimeout); err != nil {
		return nil, err
	}
	if sr.RSSBefore, err = processRSS(srv.pid); err != nil {
		return nil, err
	}
	// Slab memory is the whole machine's: it is summed over the connect
	// steps alone, so that whatever else runs between them (and the
	// settles and scavenges) is not charged to the connections.
	var kernel Kernel
	marks := cfg.marksFor(sr.Target)
	prev := 0
	for i, m := range marks {
		k0, err := readKernel()
		if err != nil {
			return sr, err
		}
		cpu0, err := processCPU(srv.pid)
		if err != nil {
			return sr, err
		}
		t0 := time.Now()
		st, err := openAll(procs, m, stepTimeout(m-prev))
		elapsed := time.Since(t0)
		cpu1, cerr := processCPU(srv.pid)
		if err == nil {
			err = cerr
		}
		k1, kerr := readKernel()
		if err == nil {
			err = kerr
		}
		if err != nil {
			return sr, err
		}
		kernel = kernel.add(k1, k0)
		prev = m
		sr.ConnectSeconds += elapsed.Seconds()
		sr.CPUSeconds += (cpu1 - cpu0).Seconds()
		sr.Held, sr.Failed, sr.Dropped, sr.FirstError = st.Open, st.Failed, st.Dropped, st.FirstError
		if st.Open < m {
			return sr, fmt.Errorf("%d of %d connections held (%d failed, %d dropped; first error: %s)", st.Open, m, st.Failed, st.Dropped, st.FirstError)
		}
		if err := sleep(cfg.Settle); err != nil {
			return sr, err
		}
		mk := Mark{Conns: st.Open}
		if mk.RSS, err = processRSS(srv.pid); err != nil {
			return sr, err
		}
		mk.Kernel = kernel.perConn(mk.Conns)
		if cfg.ScavengeAtMarks || i == len(marks)-1 {
			if sr.Stats, err = scavenge.Request(srv.socket, "scavenge", scavengeTimeout); err != nil {
				return sr, err
			}
			if mk.RSSScavenged, err = processRSS(srv.pid); err != nil {
				return sr, err
			}
		}
		sr.Marks = append(sr.Marks, mk)
		fmt.Fprintf(cfg.Progress, "   %6d conns: rss %6.0f B/conn, scavenged %6.0f B/conn, kernel %5.0f B/conn (%.0f conns/s in the step)\n",
			mk.Conns, sr.RawPerConn(mk), sr.ScavengedPerConn(mk), mk.Kernel.Floor(), float64(m-marksBefore(marks, i))/elapsed.Seconds())
	}
	sr.LoadAfter = loadAvg()
	return sr, nil
}

func marksBefore(marks []int, i int) int {
	if i == 0 {
		return 0
	}
	return marks[i-1]
}

// ParseInts reads a comma list of counts, e.g. "1000,2000,4000".
func ParseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, n)
	}
	return out, nil
}
