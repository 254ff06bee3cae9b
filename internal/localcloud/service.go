package localcloud

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Unit active states, as systemctl shows them.
const (
	unitInactive     = "inactive"
	unitActivating   = "activating" // waiting to restart
	unitActive       = "active"
	unitDeactivating = "deactivating"
	unitFailed       = "failed"
)

// service supervises one systemd service of an instance: it runs ExecStart, restarts it as
// Restart= says (within the start limit), and stops it with KillSignal, then SIGKILL after
// TimeoutStopSec (capped by Config.MaxStopTimeout), as systemd does.
type service struct {
	in   *instance
	name string

	mu         sync.Mutex
	spec       *unitSpec
	argv       []string // as run, after adaptation
	state      string
	result     string // success, exit-code, signal, exec-failure, start-limit-hit, resources
	pid        int
	exitStatus int
	restarts   int
	since      time.Time
	starts     []time.Time
	gen        int           // bumped by every start and stop; a restart timer of an older gen is void
	exited     chan struct{} // closed when the running process has exited
	down       bool          // the instance crashed: nothing restarts any more
}

func newService(in *instance, name string) *service {
	return &service{in: in, name: name, state: unitInactive}
}

// start loads the unit afresh and starts it unless it runs already. For Type=oneshot it waits
// for the command to finish. The error is what systemctl would print.
func (s *service) start() error {
	spec, err := loadUnit(s.in.root, s.name)
	if err != nil {
		s.in.con.printf(s.name, "Failed to load unit: %v", err)
		return fmt.Errorf("failed to start %s: %v", s.name, err)
	}
	s.mu.Lock()
	if s.down || s.in.c.ctx.Err() != nil {
		s.mu.Unlock()
		return fmt.Errorf("failed to start %s: the instance is down", s.name)
	}
	if s.exited != nil && (s.state == unitActive || s.state == unitDeactivating) {
		s.mu.Unlock()
		return nil
	}
	for _, w := range spec.Warnings {
		s.in.con.line(s.name, w)
	}
	s.spec = spec
	s.gen++
	s.restarts = 0
	err = s.launchLocked()
	exited := s.exited
	oneshot := spec.Type == "oneshot"
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if oneshot && exited != nil {
		<-exited
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.state == unitFailed {
			return fmt.Errorf("job for %s failed because the control process exited with error code", s.name)
		}
	}
	return nil
}

// launchLocked starts the process (s.mu held). A start beyond the start limit fails the unit.
func (s *service) launchLocked() error {
	now := time.Now()
	kept := s.starts[:0]
	for _, t := range s.starts {
		if now.Sub(t) < s.spec.StartLimitInterval {
			kept = append(kept, t)
		}
	}
	s.starts = kept
	if s.spec.StartLimitBurst > 0 && len(s.starts) >= s.spec.StartLimitBurst {
		s.in.c.nat.expectListeners(s.key(), nil)
		s.state, s.result = unitFailed, "start-limit-hit"
		s.in.con.printf(s.name, "Start request repeated too quickly.")
		s.in.con.printf(s.name, "Failed with result 'start-limit-hit'.")
		return fmt.Errorf("job for %s failed: start request repeated too quickly", s.name)
	}
	s.starts = append(s.starts, now)

	cmds, env, err := s.in.serviceCommand(s.spec)
	if err == nil {
		var dirs []string
		dirs, err = s.in.stateDirectories(s.spec)
		if len(dirs) > 0 {
			env = append(env, "STATE_DIRECTORY="+strings.Join(dirs, ":"))
		}
	}
	if err != nil {
		s.state, s.result = unitFailed, "resources"
		s.in.con.printf(s.name, "Failed to run 'start' task: %v", err)
		return fmt.Errorf("failed to start %s: %v", s.name, err)
	}
	cmd := cmds[0]
	s.argv = cmd.Argv
	s.in.c.nat.expectListeners(s.key(), cmd.Listens)
	s.in.con.printf(s.name, "Starting %s: %s", s.describe(), strings.Join(cmd.Argv, " "))
	c := exec.Command(cmd.Argv[0], cmd.Argv[1:]...)
	c.Env = env
	c.Dir = s.in.workingDir(s.spec)
	out := s.in.con.writer(s.name)
	c.Stdout, c.Stderr = out, out
	c.SysProcAttr = processAttr()
	// A child that keeps the output pipe open must not hold up the exit.
	c.WaitDelay = time.Second
	exited := make(chan struct{})
	s.exited = exited
	if err := c.Start(); err != nil {
		// systemd's 203/EXEC: the unit was started, and failed at once.
		s.in.con.printf(s.name, "Failed to execute %s: %v", cmd.Argv[0], err)
		s.pid = 0
		gen := s.gen
		go s.exitedWith(gen, exited, 203, "exec-failure", cmd.IgnoreFailed)
		return nil
	}
	s.pid = c.Process.Pid
	s.state, s.since = unitActive, now
	s.in.applyLimits(s.name, s.pid, s.spec)
	gen := s.gen
	go func() {
		err := c.Wait()
		code, result := exitOf(c.ProcessState, err)
		// Whatever the main process left behind in its group goes with it (KillMode=control-group).
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		s.exitedWith(gen, exited, code, result, cmd.IgnoreFailed)
	}()
	return nil
}

// key names the unit among all instances' units.
func (s *service) key() string { return s.in.id + "/" + s.name }

func (s *service) describe() string {
	if s.spec != nil && s.spec.Description != "" {
		return s.spec.Description
	}
	return s.name
}

// exitOf maps a process end to systemd's exit status (128+signal for a signal) and result.
func exitOf(ps *os.ProcessState, err error) (int, string) {
	if ps == nil {
		return 203, "exec-failure"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), "signal"
	}
	if ps.ExitCode() != 0 {
		return ps.ExitCode(), "exit-code"
	}
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return 1, "exit-code"
	}
	return 0, "success"
}

// cleanExit is systemd's "clean" exit: status 0, or the signals a stop sends.
func cleanExit(code int) bool {
	switch code {
	case 0, 128 + int(syscall.SIGHUP), 128 + int(syscall.SIGINT), 128 + int(syscall.SIGTERM), 128 + int(syscall.SIGPIPE):
		return true
	}
	return false
}

func (s *service) exitedWith(gen int, exited chan struct{}, code int, result string, ignoreFailed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(exited)
	s.pid, s.exitStatus = 0, code
	if ignoreFailed && result == "exit-code" {
		code, result = 0, "success"
	}
	if gen != s.gen || s.state == unitDeactivating {
		// Stopped on purpose: a stop is not a failure.
		s.in.c.nat.expectListeners(s.key(), nil)
		s.state, s.result = unitInactive, "success"
		s.in.con.printf(s.name, "Stopped %s.", s.describe())
		return
	}
	clean := cleanExit(code)
	s.in.con.printf(s.name, "Main process exited, status=%d (%s)", code, result)
	if s.down {
		s.in.c.nat.expectListeners(s.key(), nil)
		s.state, s.result = unitFailed, result
		return
	}
	if s.spec.Type == "oneshot" {
		if clean {
			s.state, s.result = unitInactive, "success"
			if s.spec.RemainAfterExit {
				s.state = unitActive
			}
		} else {
			s.state, s.result = unitFailed, result
		}
		return
	}
	restart := false
	switch s.spec.Restart {
	case "always":
		restart = true
	case "on-success":
		restart = clean
	case "on-failure":
		restart = !clean
	case "on-abnormal":
		restart = result == "signal" && !clean
	case "on-abort":
		restart = result == "signal" && !clean
	}
	if !restart {
		s.in.c.nat.expectListeners(s.key(), nil)
		if clean {
			s.state, s.result = unitInactive, "success"
		} else {
			s.state, s.result = unitFailed, result
			s.in.con.printf(s.name, "Failed with result '%s'.", result)
		}
		return
	}
	s.state, s.result = unitActivating, result
	s.in.con.printf(s.name, "Scheduled restart in %v.", s.spec.RestartDelay)
	time.AfterFunc(s.spec.RestartDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if gen != s.gen || s.state != unitActivating || s.down || s.in.c.ctx.Err() != nil {
			return
		}
		s.restarts++
		_ = s.launchLocked()
	})
}

// stop sends KillSignal to the unit's process group, waits up to its TimeoutStopSec (at most
// maxWait), then SIGKILLs the group, and returns once the main process has exited.
func (s *service) stop(maxWait time.Duration) {
	s.mu.Lock()
	s.gen++
	if s.state == unitActivating || s.state == unitFailed {
		s.state = unitInactive
	}
	exited, pid := s.exited, s.pid
	if pid == 0 || exited == nil {
		s.in.c.nat.expectListeners(s.key(), nil)
		s.mu.Unlock()
		return
	}
	s.state = unitDeactivating
	sig, mode, timeout := s.spec.KillSignal, s.spec.KillMode, s.spec.StopTimeout
	s.mu.Unlock()
	if timeout > maxWait {
		timeout = maxWait
	}
	s.in.con.printf(s.name, "Stopping %s (signal %v, timeout %v)...", s.describe(), sig, timeout)
	target := -pid
	if mode == "process" || mode == "mixed" {
		target = pid
	}
	_ = syscall.Kill(target, sig)
	select {
	case <-exited:
		_ = syscall.Kill(-pid, syscall.SIGKILL) // leftovers of the group
	case <-time.After(timeout):
		s.in.con.printf(s.name, "State 'stop-sigterm' timed out. Killing.")
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
}

// kill SIGKILLs the unit's processes as a crash would; Restart= decides what happens next.
func (s *service) kill() bool {
	s.mu.Lock()
	pid := s.pid
	s.mu.Unlock()
	if pid == 0 {
		return false
	}
	s.in.con.printf(s.name, "Fault injection: SIGKILL to the process group of %d.", pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return true
}

// crash kills the unit for good: the instance's OS is gone.
func (s *service) crash() {
	s.mu.Lock()
	s.down = true
	s.gen++
	exited, pid := s.exited, s.pid
	s.mu.Unlock()
	if pid != 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
	s.mu.Lock()
	if s.state != unitInactive {
		s.state = unitFailed
	}
	s.mu.Unlock()
}

// UnitStatus is one service as systemctl status would show it.
type UnitStatus struct {
	Name        string    `json:"name"`
	ActiveState string    `json:"active_state"`
	Result      string    `json:"result,omitempty"`
	PID         int       `json:"pid,omitempty"`
	ExitStatus  int       `json:"exit_status"`
	Restarts    int       `json:"restarts"`
	Since       time.Time `json:"since,omitempty"`
	Argv        []string  `json:"argv,omitempty"`
	Log         []string  `json:"log,omitempty"`
}

func (s *service) status() UnitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return UnitStatus{
		Name: s.name, ActiveState: s.state, Result: s.result, PID: s.pid, ExitStatus: s.exitStatus,
		Restarts: s.restarts, Since: s.since, Argv: append([]string(nil), s.argv...), Log: s.in.con.tail(s.name),
	}
}

// processAttr puts a process in its own group (so a stop reaches its children too) and ties
// its life to the local cloud's: if the local cloud dies, the kernel kills it.
func processAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// setNoFile sets a process's soft RLIMIT_NOFILE (capped at its hard limit).
func setNoFile(pid int, want uint64) (uint64, error) {
	var cur unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &cur); err != nil {
		return 0, err
	}
	n := min(want, cur.Max)
	if n == cur.Cur {
		return n, nil
	}
	return n, unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: cur.Max}, nil)
}
