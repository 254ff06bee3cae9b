package portceiling

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// PortRangeSysctl is the per-namespace file holding the ephemeral port
// range.
const PortRangeSysctl = "/proc/sys/net/ipv4/ip_local_port_range"

// NamePrefix starts the name of every namespace this package creates
// through NewScratchNamespace, so stale ones can be told apart from
// anything else on the machine.
const NamePrefix = "wsdirect-pc-"

// nsName is what "ip netns add" accepts and we are willing to pass around.
var nsName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$`)

// Namespace is a network namespace made for one experiment. Its only
// interface is its own loopback, so nothing in it can reach the machine's
// network, and nothing outside can reach it.
type Namespace struct {
	// Name is the namespace's name under /run/netns.
	Name string
	ip   string
}

// Prerequisites reports why this process cannot create network namespaces
// (not root, or no "ip" command), or nil when it can.
func Prerequisites() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (euid is not 0)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New(`the "ip" command (iproute2) is not installed`)
	}
	return nil
}

// NewNamespace creates namespace name and brings its loopback up.
func NewNamespace(ctx context.Context, name string) (*Namespace, error) {
	if !nsName.MatchString(name) {
		return nil, fmt.Errorf("portceiling: namespace name %q: use letters, digits, '.', '_' and '-', at most 48 characters", name)
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("portceiling: %w", err)
	}
	ns := &Namespace{Name: name, ip: ip}
	if _, err := ns.run(ctx, nil, ip, "netns", "add", name); err != nil {
		return nil, err
	}
	if _, err := ns.run(ctx, nil, ip, "-n", name, "link", "set", "lo", "up"); err != nil {
		_ = ns.Delete()
		return nil, err
	}
	return ns, nil
}

// NewScratchNamespace creates a namespace named NamePrefix + this
// process's id + tag, first deleting namespaces with NamePrefix left
// behind by processes that no longer exist (a test killed by its timeout
// runs no cleanup).
func NewScratchNamespace(ctx context.Context, tag string) (*Namespace, error) {
	DeleteStale(ctx)
	return NewNamespace(ctx, fmt.Sprintf("%s%d-%s", NamePrefix, os.Getpid(), tag))
}

// DeleteStale deletes namespaces named NamePrefix<pid>-... whose pid is not
// a running process. Errors are ignored: this is housekeeping.
func DeleteStale(ctx context.Context) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		return
	}
	out, err := exec.CommandContext(ctx, ip, "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], NamePrefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(f[0], NamePrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		// Signal 0 probes for the process without touching it.
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = exec.CommandContext(ctx, ip, "netns", "delete", f[0]).Run()
		}
	}
}

// AddAddresses puts each address on the namespace's loopback as a /32
// (/128), the way secondary private IPs sit on an instance's interface.
// The loopback already answers for all of 127.0.0.0/8; listing the
// addresses makes them explicit (and visible in "ip addr").
func (ns *Namespace) AddAddresses(ctx context.Context, addrs ...netip.Addr) error {
	if len(addrs) == 0 {
		return nil
	}
	var batch strings.Builder
	for _, a := range addrs {
		if !a.IsLoopback() {
			// Only loopback addresses: nothing here may look like a
			// route to a real network.
			return fmt.Errorf("portceiling: %s is not a loopback address", a)
		}
		fmt.Fprintf(&batch, "addr add %s dev lo\n", netip.PrefixFrom(a, a.BitLen()))
	}
	_, err := ns.run(ctx, strings.NewReader(batch.String()), ns.ip, "-n", ns.Name, "-batch", "-")
	return err
}

// SetPortRange sets net.ipv4.ip_local_port_range inside the namespace
// only, and reads it back.
func (ns *Namespace) SetPortRange(ctx context.Context, lo, hi int) error {
	if lo < 1024 || hi > 65535 || lo > hi {
		return fmt.Errorf("portceiling: port range %d-%d must lie within 1024-65535", lo, hi)
	}
	// tee runs inside the namespace, so it writes the namespace's sysctl.
	if _, err := ns.run(ctx, strings.NewReader(fmt.Sprintf("%d %d\n", lo, hi)),
		ns.ip, "netns", "exec", ns.Name, "tee", PortRangeSysctl); err != nil {
		return err
	}
	gotLo, gotHi, err := ns.PortRange(ctx)
	if err != nil {
		return err
	}
	if gotLo != lo || gotHi != hi {
		return fmt.Errorf("portceiling: set port range %d-%d in %s but it reads %d-%d", lo, hi, ns.Name, gotLo, gotHi)
	}
	return nil
}

// PortRange reads the namespace's ephemeral port range.
func (ns *Namespace) PortRange(ctx context.Context) (lo, hi int, err error) {
	out, err := ns.run(ctx, nil, ns.ip, "netns", "exec", ns.Name, "cat", PortRangeSysctl)
	if err != nil {
		return 0, 0, err
	}
	return ParsePortRange(out)
}

// ParsePortRange parses the contents of PortRangeSysctl ("32768\t60999").
func ParsePortRange(b []byte) (lo, hi int, err error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("portceiling: unexpected port range %q", b)
	}
	if lo, err = strconv.Atoi(f[0]); err == nil {
		hi, err = strconv.Atoi(f[1])
	}
	if err != nil {
		return 0, 0, fmt.Errorf("portceiling: unexpected port range %q", b)
	}
	return lo, hi, nil
}

// Command returns a command that runs name inside the namespace. "ip netns
// exec" execs it in place, so the command's process is the program itself
// and killing it kills the program.
func (ns *Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, ns.ip, append([]string{"netns", "exec", ns.Name, name}, args...)...)
	// Never leave a program behind in a namespace being deleted.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Delete removes the namespace. Processes still inside keep it alive until
// they exit, so stop them first. Deleting a namespace that is already gone
// is not an error.
func (ns *Namespace) Delete() error {
	out, err := exec.Command(ns.ip, "netns", "delete", ns.Name).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("No such file")) {
		return fmt.Errorf("portceiling: ip netns delete %s: %v: %s", ns.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

func (ns *Namespace) run(ctx context.Context, stdin *strings.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("portceiling: %s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}
