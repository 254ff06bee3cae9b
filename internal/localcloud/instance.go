package localcloud

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Local phases of an instance (what its "hardware" is doing), beside its EC2 state.
const (
	phaseBooting  = "booting"
	phaseRunning  = "running"
	phaseStopping = "stopping"
	phaseStopped  = "stopped"
	phaseCrashed  = "crashed" // Kill: every process SIGKILLed, nothing restarts
	phaseGone     = "terminated"
)

// Cloud-init results.
const (
	bootPending = ""
	bootRunning = "running"
	bootDone    = "done"
	bootError   = "error"
)

// bootFinished is cloud-init's per-instance marker: user data runs on the first boot only.
const bootFinished = "/var/lib/cloud/instance/boot-finished"

// instance is one EC2 instance booted as local processes: a root directory as its file
// system, an IMDS of its own, a console log, and the services its systemd would run.
type instance struct {
	c    *Cloud
	id   string
	dir  string // <work>/instances/<id>
	root string // dir/root, the instance's "/"
	con  *console
	imds *metadata
	ops  chan func()
	done chan struct{} // closed when the op loop has ended (terminated or Cloud closed)

	mu         sync.Mutex
	phase      string
	boot       string
	bootErr    string
	private    netip.Addr
	hostname   string
	services   map[string]*service
	bootCancel context.CancelFunc
	shutting   bool
	bootID     string
}

func (c *Cloud) newInstance(id string) (*instance, error) {
	dir := filepath.Join(c.cfg.WorkDir, "instances", id)
	in := &instance{c: c, id: id, dir: dir, root: filepath.Join(dir, "root"), ops: make(chan func(), 64),
		done: make(chan struct{}), services: map[string]*service{}}
	if err := os.MkdirAll(in.root, 0o755); err != nil {
		return nil, err
	}
	// The instance's /tmp, where TMPDIR points its processes (mktemp in the installer, Go's
	// os.TempDir), so nothing lands in this machine's /tmp.
	if err := os.MkdirAll(rootPath(in.root, "/tmp"), 0o700); err != nil {
		return nil, err
	}
	con, err := openConsole(filepath.Join(dir, "console.log"))
	if err != nil {
		return nil, err
	}
	in.con = con
	m, err := startIMDS(id, c.cfg.Region, c.account, c.sim.Instance)
	if err != nil {
		con.close()
		return nil, err
	}
	in.imds = m
	go in.loop()
	return in, nil
}

// loop runs the instance's boots and shutdowns one after the other.
func (in *instance) loop() {
	defer close(in.done)
	for {
		select {
		case op := <-in.ops:
			op()
			in.mu.Lock()
			gone := in.phase == phaseGone
			in.mu.Unlock()
			if gone {
				return
			}
		case <-in.c.ctx.Done():
			return
		}
	}
}

func (in *instance) enqueue(op func()) {
	select {
	case in.ops <- op:
	case <-in.c.ctx.Done():
	}
}

// booting handles ec2sim's Booting: power on after BootDelay, then systemd and cloud-init.
func (in *instance) booting() {
	ctx, cancel := context.WithCancel(in.c.ctx)
	in.mu.Lock()
	if in.bootCancel != nil {
		in.bootCancel()
	}
	in.bootCancel = cancel
	in.phase = phaseBooting
	in.mu.Unlock()
	in.enqueue(func() { in.runBoot(ctx) })
}

// shuttingDown handles ec2sim's ShuttingDown (terminate or stop): cut a boot short, stop every
// service with its grace period, then tell the emulator the OS is down.
func (in *instance) shuttingDown() {
	in.mu.Lock()
	if in.bootCancel != nil {
		in.bootCancel()
	}
	if in.shutting {
		in.mu.Unlock()
		return
	}
	in.shutting = true
	in.mu.Unlock()
	in.enqueue(in.runShutdown)
}

func (in *instance) runBoot(ctx context.Context) {
	if d := in.c.cfg.BootDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err := in.c.sim.InstanceBooted(in.id); err != nil {
		in.con.printf("local-cloud", "not booting: %v", err)
		return
	}
	snap, ok := in.c.sim.Instance(in.id)
	if !ok {
		return
	}
	priv, err := netip.ParseAddr(snap.PrivateIP)
	if err != nil {
		in.con.printf("local-cloud", "not booting: no private IP: %v", err)
		return
	}
	var b [16]byte
	_, _ = randRead(b[:])
	in.mu.Lock()
	in.private = priv
	in.hostname = strings.SplitN(snap.PrivateDNSName, ".", 2)[0]
	in.phase = phaseRunning
	in.bootID = hex.EncodeToString(b[:])
	svcs := make([]*service, 0, len(in.services))
	for _, s := range in.services {
		svcs = append(svcs, s)
	}
	in.mu.Unlock()
	// A fresh boot after a crash: the services run again. (A service's lock is never taken
	// with the instance's held: starting a service takes them the other way round.)
	for _, s := range svcs {
		s.mu.Lock()
		s.down = false
		s.mu.Unlock()
	}
	in.con.printf("local-cloud", "booted %s (%s) at %s, public %s; IMDS %s", in.id, snap.InstanceType, snap.PrivateIP, orNone(snap.PublicIP), in.imds.URL())

	// systemd brings up what was enabled on an earlier boot.
	for _, name := range in.enabledUnits() {
		if ctx.Err() != nil {
			return
		}
		if err := in.service(name).start(); err != nil {
			in.con.line("systemd", err.Error())
		}
	}
	// cloud-init runs the user data on the first boot only.
	if _, err := os.Stat(rootPath(in.root, bootFinished)); err == nil {
		return
	}
	raw, err := base64.StdEncoding.DecodeString(snap.UserData)
	if err != nil {
		in.setBoot(bootError, "user data is not base64")
		return
	}
	if len(raw) == 0 {
		in.setBoot(bootDone, "")
		return
	}
	in.setBoot(bootRunning, "")
	if err := in.runCloudInit(ctx, raw); err != nil {
		if ctx.Err() != nil {
			in.setBoot(bootError, "interrupted by shutdown")
			return
		}
		in.con.printf(cloudInitSource, "Cloud-init (local cloud) failed: %v", err)
		in.setBoot(bootError, err.Error())
	} else {
		in.setBoot(bootDone, "")
	}
	marker := rootPath(in.root, bootFinished)
	_ = os.MkdirAll(filepath.Dir(marker), 0o755)
	_ = os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (in *instance) setBoot(status, msg string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.boot, in.bootErr = status, msg
}

func (in *instance) runShutdown() {
	// Each round ends the state it found; another round is needed only when a terminate came in
	// while a stop was finishing, so a few rounds are plenty.
	for round := 0; round < 5; round++ {
		in.mu.Lock()
		if in.phase != phaseGone && in.phase != phaseCrashed {
			in.phase = phaseStopping
		}
		in.mu.Unlock()
		in.stopAll()
		_ = in.c.sim.InstanceShutDown(in.id)

		in.mu.Lock()
		snap, ok := in.c.sim.Instance(in.id)
		if ok && (snap.State == "shutting-down" || snap.State == "stopping") {
			// A terminate came in while a stop was finishing: shut down again.
			in.mu.Unlock()
			continue
		}
		in.shutting = false
		if !ok || snap.State == "terminated" {
			// The root volume is deleted on termination (DeleteOnTermination); the console log
			// stays, like EC2's console output of a terminated instance.
			if err := os.RemoveAll(in.root); err != nil {
				in.con.printf("local-cloud", "deleting the root volume: %v", err)
			}
			in.con.printf("local-cloud", "terminated; the root volume is deleted")
			in.imds.close()
			in.con.close()
			in.phase = phaseGone
			in.mu.Unlock()
			return
		}
		in.phase = phaseStopped
		in.mu.Unlock()
		in.con.printf("local-cloud", "stopped")
		return
	}
	in.mu.Lock()
	in.shutting = false
	in.mu.Unlock()
	in.con.printf("local-cloud", "still shutting down after 5 rounds; the next stop or terminate tries again")
}

// stopAll stops every service in parallel, each within its grace period.
func (in *instance) stopAll() {
	in.mu.Lock()
	svcs := make([]*service, 0, len(in.services))
	for _, s := range in.services {
		svcs = append(svcs, s)
	}
	in.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stop(in.c.cfg.MaxStopTimeout)
		}()
	}
	wg.Wait()
}

// crash is the fault-injection kill: every process of the instance is SIGKILLed at once and
// nothing restarts, as when the host under an instance fails. EC2 still reports the instance
// running; stop, start and terminate work as usual afterwards.
func (in *instance) crash() {
	in.mu.Lock()
	if in.bootCancel != nil {
		in.bootCancel()
	}
	in.phase = phaseCrashed
	svcs := make([]*service, 0, len(in.services))
	for _, s := range in.services {
		svcs = append(svcs, s)
	}
	in.mu.Unlock()
	in.con.printf("local-cloud", "fault injection: the instance crashed")
	for _, s := range svcs {
		s.crash()
	}
}

// service returns the unit's supervisor, creating it on first use.
func (in *instance) service(name string) *service {
	in.mu.Lock()
	defer in.mu.Unlock()
	s, ok := in.services[name]
	if !ok {
		s = newService(in, name)
		in.services[name] = s
	}
	return s
}

// wantsDir is where `systemctl enable` links a unit wanted by target.
func (in *instance) wantsDir(target string) string {
	return rootPath(in.root, "/etc/systemd/system/"+target+".wants")
}

// enabledUnits lists the services linked into multi-user.target or default.target.
func (in *instance) enabledUnits() []string {
	var out []string
	for _, t := range []string{"multi-user.target", "default.target"} {
		ents, _ := os.ReadDir(in.wantsDir(t))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".service") && !slices.Contains(out, e.Name()) {
				out = append(out, e.Name())
			}
		}
	}
	sort.Strings(out)
	return out
}

// basePath is systemd's default PATH for services.
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// adaptedEnv is the environment adaptation: where this machine's endpoints are. The AWS SDKs
// read AWS_EC2_METADATA_SERVICE_ENDPOINT for IMDS and AWS_ENDPOINT_URL_<SERVICE> for each API,
// so binaries reach the instance's own IMDS and the local cloud's APIs without a flag.
func (in *instance) adaptedEnv() []string {
	env := []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + in.imds.URL()}
	for _, name := range in.c.serviceNames() {
		env = append(env, "AWS_ENDPOINT_URL_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+"="+in.c.URL())
	}
	return env
}

// runcmdEnv is the environment of runcmd commands: cloud-init runs them as root.
func (in *instance) runcmdEnv() []string {
	env := []string{"PATH=" + basePath, "HOME=" + rootPath(in.root, "/root"), "LANG=C.UTF-8", "TMPDIR=" + rootPath(in.root, "/tmp"), "DESTDIR=" + in.root}
	return append(env, in.adaptedEnv()...)
}

// serviceCommand resolves a unit's command lines and environment.
func (in *instance) serviceCommand(spec *unitSpec) ([]execCommand, []string, error) {
	in.mu.Lock()
	hostname, private, bootID := in.hostname, in.private, in.bootID
	in.mu.Unlock()
	user := spec.User
	if user == "" {
		user = "root"
	}
	home := "/root"
	if user != "root" {
		home = "/home/" + user
	}
	env := []string{"PATH=" + basePath, "LANG=C.UTF-8", "INVOCATION_ID=" + bootID, "TMPDIR=" + rootPath(in.root, "/tmp")}
	if spec.User != "" {
		env = append(env, "USER="+user, "LOGNAME="+user, "HOME="+rootPath(in.root, home), "SHELL=/usr/sbin/nologin")
	}
	env = append(env, spec.Environment...)
	for _, f := range spec.EnvironmentFiles {
		optional := strings.HasPrefix(f, "-")
		f = strings.TrimPrefix(f, "-")
		vars, err := readEnvironmentFile(rootPath(in.root, f))
		if err != nil {
			if optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, nil, fmt.Errorf("failed to load environment files: %v", err)
		}
		env = append(env, vars...)
	}
	env = append(env, in.adaptedEnv()...)
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	env = dedupEnv(env)
	machine := sha256.Sum256([]byte(in.id))
	sp := specifierEnv{Unit: spec.Name, Hostname: hostname, User: user, Home: home, Machine: hex.EncodeToString(machine[:16]), Boot: bootID}
	var cmds []execCommand
	for _, line := range spec.ExecStart {
		cmd, err := parseExecLine(line, sp, vars)
		if err != nil {
			return nil, nil, fmt.Errorf("ExecStart=%s: %v", line, err)
		}
		cmd.Argv, cmd.Listens = adaptArgs(cmd.Argv, in.root, private)
		cmds = append(cmds, cmd)
	}
	return cmds, env, nil
}

// dedupEnv keeps the last assignment of each variable, in first-seen order.
func dedupEnv(env []string) []string {
	last := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	out := env[:0:0]
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if last[k] == i {
			out = append(out, kv)
		}
	}
	return out
}

// workingDir is WorkingDirectory= inside the root; systemd's default is "/".
func (in *instance) workingDir(spec *unitSpec) string {
	wd := strings.TrimPrefix(spec.WorkingDirectory, "-")
	if wd == "" || wd == "~" {
		return in.root
	}
	return rootPath(in.root, wd)
}

// stateDirectories creates StateDirectory= under the root's /var/lib with
// StateDirectoryMode=, as systemd does before each start, and returns their
// paths (for $STATE_DIRECTORY). The owner is not changed (User= is not
// applied either).
func (in *instance) stateDirectories(spec *unitSpec) ([]string, error) {
	var dirs []string
	for _, d := range spec.StateDirectories {
		p := rootPath(in.root, "/var/lib/"+d)
		if err := os.MkdirAll(p, spec.StateDirectoryMode); err != nil {
			return nil, fmt.Errorf("StateDirectory=%s: %w", d, err)
		}
		if err := os.Chmod(p, spec.StateDirectoryMode); err != nil {
			return nil, fmt.Errorf("StateDirectory=%s: %w", d, err)
		}
		dirs = append(dirs, p)
	}
	return dirs, nil
}

// applyLimits sets LimitNOFILE on a started process, capped at this machine's hard limit
// (an adaptation: the host's limit is the ceiling).
func (in *instance) applyLimits(unit string, pid int, spec *unitSpec) {
	if spec.LimitNOFILE == 0 {
		return
	}
	got, err := setNoFile(pid, spec.LimitNOFILE)
	switch {
	case err != nil:
		in.con.printf(unit, "LimitNOFILE=%d: %v", spec.LimitNOFILE, err)
	case got < spec.LimitNOFILE:
		in.con.printf(unit, "LimitNOFILE=%d capped at this machine's hard limit %d", spec.LimitNOFILE, got)
	}
}

// InstanceStatus is what the local cloud knows about one instance.
type InstanceStatus struct {
	ID        string            `json:"id"`
	State     string            `json:"state"` // the EC2 state
	Phase     string            `json:"phase"` // booting, running, stopping, stopped, crashed, terminated
	PrivateIP string            `json:"private_ip,omitempty"`
	PublicIP  string            `json:"public_ip,omitempty"`
	Hostname  string            `json:"hostname,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	IMDS      string            `json:"imds,omitempty"`
	Boot      string            `json:"boot"` // "", running, done, error
	BootError string            `json:"boot_error,omitempty"`
	BootLog   []string          `json:"boot_log,omitempty"`
	Units     []UnitStatus      `json:"units,omitempty"`
	Console   string            `json:"console"` // path of the console log
}

// PIDs returns the processes the instance runs now.
func (s InstanceStatus) PIDs() []int {
	var out []int
	for _, u := range s.Units {
		if u.PID != 0 {
			out = append(out, u.PID)
		}
	}
	return out
}

func (in *instance) status() InstanceStatus {
	snap, _ := in.c.sim.Instance(in.id)
	in.mu.Lock()
	st := InstanceStatus{
		ID: in.id, State: snap.State, Phase: in.phase, PrivateIP: snap.PrivateIP, PublicIP: snap.PublicIP,
		Hostname: in.hostname, Tags: snap.Tags, Boot: in.boot, BootError: in.bootErr,
		Console: filepath.Join(in.dir, "console.log"),
	}
	if in.phase != phaseGone {
		st.IMDS = in.imds.URL()
	}
	if st.State == "" {
		st.State = "terminated" // expired from the emulator's view
	}
	names := make([]string, 0, len(in.services))
	for n := range in.services {
		names = append(names, n)
	}
	in.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		st.Units = append(st.Units, in.service(n).status())
	}
	st.BootLog = in.con.tail(cloudInitSource)
	return st
}
