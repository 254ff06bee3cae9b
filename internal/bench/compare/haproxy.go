package compare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// HAProxy is a running haproxy process.
type HAProxy struct {
	// Bind is the frontend's host:port.
	Bind string
	// ConfigPath is the rendered haproxy.cfg.
	ConfigPath string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer
	err  error
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 64<<10 { // keep the start, where config errors are
		return len(p), nil
	}
	return w.b.Write(p)
}

// StartHAProxy renders cfg into dir/haproxy.cfg, starts binary on it in the
// foreground (-db), and waits until the frontend accepts connections.
func StartHAProxy(ctx context.Context, binary string, cfg haproxycfg.Config, dir string) (*HAProxy, error) {
	text, err := haproxycfg.Render(cfg)
	if err != nil {
		return nil, fmt.Errorf("benchcompare: render haproxy.cfg: %w", err)
	}
	path := filepath.Join(dir, "haproxy-"+cfg.Mode+".cfg")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, err
	}
	h := &HAProxy{Bind: cfg.Bind, ConfigPath: path, done: make(chan struct{})}
	h.cmd = exec.Command(binary, "-db", "-f", path)
	h.cmd.Stdout = lockedWriter{&h.mu, &h.out}
	h.cmd.Stderr = lockedWriter{&h.mu, &h.out}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("benchcompare: start haproxy: %w", err)
	}
	go func() {
		err := h.cmd.Wait()
		h.mu.Lock()
		h.err = err
		h.mu.Unlock()
		close(h.done)
	}()
	err = probe.Poll(ctx, 10*time.Second, 50*time.Millisecond, "haproxy to listen on "+h.Bind, func() error {
		if !h.Running() {
			h.mu.Lock()
			defer h.mu.Unlock()
			return probe.Stop(fmt.Errorf("haproxy exited: %v", h.err))
		}
		c, err := net.DialTimeout("tcp", h.Bind, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		h.Kill()
		return nil, fmt.Errorf("benchcompare: %w\n%s", err, h.Output())
	}
	return h, nil
}

// PID of the haproxy process.
func (h *HAProxy) PID() int { return h.cmd.Process.Pid }

// Running reports whether haproxy has not exited.
func (h *HAProxy) Running() bool {
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// PeakRSS is haproxy's VmHWM in bytes.
func (h *HAProxy) PeakRSS() (int64, error) {
	return localcluster.ProcStatusBytes(h.PID(), "VmHWM")
}

// Output is what haproxy printed (warnings, alerts).
func (h *HAProxy) Output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.out.String()
}

// Kill sends SIGKILL to haproxy's process group and waits for it to exit:
// the failure the article's single balancer cannot hide.
func (h *HAProxy) Kill() error {
	if !h.Running() {
		return nil
	}
	if err := syscall.Kill(-h.PID(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-h.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("benchcompare: haproxy survived SIGKILL")
	}
}

// freeAddr returns ip:port with a port that was free a moment ago.
func freeAddr(ip netip.Addr) (string, error) {
	port, err := probe.FreePort(ip)
	if err != nil {
		return "", fmt.Errorf("benchcompare: %w", err)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port)), nil
}
