// Package pebble runs Let's Encrypt's test ACME server, pebble, and its DNS
// companion pebble-challtestsrv, as real processes on loopback for tests
// (Start, Prepare) and harnesses (Run) that need a CA: the binaries are
// built into the repository's bin/ by the GNUmakefile. Validation is real: pebble connects to the http-01 or
// tls-alpn-01 port of the address it validates, which the tests point at a
// 127.0.0.x address of their own.
package pebble

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
)

// Options configure a pebble process. Start from DefaultOptions.
type Options struct {
	// HTTPPort and TLSPort are the ports pebble validates http-01 and
	// tls-alpn-01 challenges on, for every identifier. Required: pick them
	// with FreePortOn for the addresses under test.
	HTTPPort, TLSPort int
	// ListenAddr is the ACME directory's host:port; empty means 127.0.0.1
	// and a free port.
	ListenAddr string
	// DefaultValidity and ShortLivedValidity are the lifetimes of the
	// "default" and "shortlived" profiles, > 0.
	DefaultValidity, ShortLivedValidity time.Duration
	// DNS starts pebble-challtestsrv as pebble's resolver; add names with
	// AddA.
	DNS bool
	// Env is added to pebble's environment, e.g. PEBBLE_VA_ALWAYS_VALID=1
	// (only where a test says why).
	Env []string
}

// DefaultOptions returns Let's Encrypt's lifetimes; the caller sets the
// challenge ports.
func DefaultOptions() Options {
	return Options{
		// As Let's Encrypt's: 90 days, and about 6 days for the
		// shortlived profile IP certificates come under.
		DefaultValidity:    90 * 24 * time.Hour,
		ShortLivedValidity: 6 * 24 * time.Hour,
	}
}

// validate reports the first problem with o.
func (o *Options) validate() error {
	switch {
	case o.HTTPPort < 1 || o.HTTPPort > 65535 || o.TLSPort < 1 || o.TLSPort > 65535:
		return fmt.Errorf("pebble: HTTPPort and TLSPort are required (1-65535), got %d and %d", o.HTTPPort, o.TLSPort)
	case o.DefaultValidity <= 0 || o.ShortLivedValidity <= 0:
		return fmt.Errorf("pebble: DefaultValidity and ShortLivedValidity must be > 0, got %s and %s", o.DefaultValidity, o.ShortLivedValidity)
	}
	return nil
}

// Pebble is a running pebble (and challtestsrv, with Options.DNS).
type Pebble struct {
	tb   testing.TB // nil for Run: methods return errors instead
	opts Options
	dir  string
	// CA signed pebble's own HTTPS certificate: ACME clients must trust it
	// (CAFile) to talk to the directory. It is not what pebble issues from.
	CA     *testca.CA
	CAFile string

	mgmtAddr string
	dnsAddr  string
	dnsMgmt  string

	mu     sync.Mutex
	pebble *proc
	chall  *proc
}

type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Binary finds a tool of the repository's bin/ (or the path in env when
// set, or PATH). Without it the test skips, unless CI is set: there a
// missing tool is a failure, so tests cannot silently stop running.
func Binary(tb testing.TB, name, env string) string {
	tb.Helper()
	p, err := binary(name, env)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%v; CI must have it", err)
	}
	tb.Skipf("skipping: %v", err)
	return ""
}

func binary(name, env string) (string, error) {
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if dir, err := repoRoot(); err == nil {
		p := filepath.Join(dir, "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found: run `make test` (it builds pebble into ./bin) or set %s", name, env)
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreePortOn returns a port free on every one of ips, below the ephemeral
// range so that no outgoing connection takes it meanwhile
// (probe.SharedFreePort).
func FreePortOn(tb testing.TB, ips ...string) int {
	tb.Helper()
	port, err := freePortOn(ips...)
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

func freePortOn(ips ...string) (int, error) {
	addrs := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return 0, fmt.Errorf("pebble: %w", err)
		}
		addrs[i] = a
	}
	return probe.SharedFreePort(addrs...)
}

// Start runs pebble (and challtestsrv with opts.DNS) and waits until its
// directory answers. Everything stops at the end of the test.
func Start(tb testing.TB, opts Options) *Pebble {
	tb.Helper()
	p := Prepare(tb, opts)
	p.Start()
	return p
}

// Prepare sets pebble up (certificate, configuration, challtestsrv) without
// starting pebble itself: a test can first point a client at a directory
// that is not there yet, then call Start.
func Prepare(tb testing.TB, opts Options) *Pebble {
	tb.Helper()
	Binary(tb, "pebble", "WSDIRECT_PEBBLE") // skips without it (outside CI)
	if opts.DNS {
		Binary(tb, "pebble-challtestsrv", "WSDIRECT_CHALLTESTSRV")
	}
	p, err := prepare(opts, tb.TempDir())
	if p != nil {
		p.tb = tb
		tb.Cleanup(p.stopAll)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Run starts pebble (and challtestsrv with opts.DNS) for a harness outside
// a test, keeping its files in dir, and waits until the directory answers.
// Close stops it.
func Run(opts Options, dir string) (*Pebble, error) {
	p, err := prepare(opts, dir)
	if err == nil {
		err = p.start()
	}
	if err != nil {
		if p != nil {
			p.stopAll()
		}
		return nil, err
	}
	return p, nil
}

// Close stops pebble and challtestsrv (Run).
func (p *Pebble) Close() { p.stopAll() }

func prepare(opts Options, dir string) (*Pebble, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.ListenAddr == "" {
		port, err := freePortOn("127.0.0.1")
		if err != nil {
			return nil, err
		}
		opts.ListenAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	p := &Pebble{opts: opts, dir: dir}
	ca, err := testca.New("pebble listener CA")
	if err != nil {
		return nil, err
	}
	p.CA = ca
	p.CAFile = filepath.Join(p.dir, "listener-ca.pem")
	if err := ca.WriteRoot(p.CAFile); err != nil {
		return nil, err
	}
	leaf, err := ca.Issue([]string{"127.0.0.1", "localhost"}, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := leaf.WriteFiles(p.dir, "listener")
	if err != nil {
		return nil, err
	}
	mport, err := freePortOn("127.0.0.1")
	if err != nil {
		return nil, err
	}
	p.mgmtAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(mport))
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  opts.ListenAddr,
		"managementListenAddress":        p.mgmtAddr,
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{
			"default":    map[string]any{"description": "default", "validityPeriod": int64(opts.DefaultValidity / time.Second)},
			"shortlived": map[string]any{"description": "short-lived", "validityPeriod": int64(opts.ShortLivedValidity / time.Second)},
		},
	}}
	data, _ := json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(p.dir, "pebble.json"), data, 0o644); err != nil {
		return nil, err
	}
	if opts.DNS {
		if err := p.startChallSrv(); err != nil {
			return p, err
		}
	}
	return p, nil
}

func (p *Pebble) startChallSrv() error {
	bin, err := binary("pebble-challtestsrv", "WSDIRECT_CHALLTESTSRV")
	if err != nil {
		return err
	}
	uport, err := freeUDPPort()
	if err != nil {
		return err
	}
	mport, err := freePortOn("127.0.0.1")
	if err != nil {
		return err
	}
	p.dnsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(uport))
	p.dnsMgmt = net.JoinHostPort("127.0.0.1", strconv.Itoa(mport))
	// Only DNS: the challenges are answered by the code under test.
	cmd := exec.Command(bin, "-dnsserver", p.dnsAddr, "-management", p.dnsMgmt,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv4", "", "-defaultIPv6", "")
	if p.chall, err = startProc(cmd); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.dnsMgmt, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pebble-challtestsrv did not start: %v\n%s", err, p.chall.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeUDPPort() (int, error) {
	return probe.FreePort(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
}

func startProc(cmd *exec.Cmd) (*proc, error) {
	pr := &proc{cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = pr.out, pr.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() { _ = cmd.Wait(); close(pr.done) }()
	return pr, nil
}

func (pr *proc) kill() {
	if pr == nil {
		return
	}
	_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-pr.done:
	case <-time.After(10 * time.Second):
	}
}

// Start starts pebble (again, after Stop: a new process with a new root)
// and waits until its directory answers.
func (p *Pebble) Start() {
	p.tb.Helper()
	if err := p.start(); err != nil {
		p.tb.Fatal(err)
	}
}

func (p *Pebble) start() error {
	bin, err := binary("pebble", "WSDIRECT_PEBBLE")
	if err != nil {
		return err
	}
	args := []string{"-config", filepath.Join(p.dir, "pebble.json")}
	if p.dnsAddr != "" {
		args = append(args, "-dnsserver", p.dnsAddr)
	}
	cmd := exec.Command(bin, args...)
	// No random sleeps before validation, and no injected bad-nonce
	// errors: tests stay fast and deterministic.
	cmd.Env = append(append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"), p.opts.Env...)
	pr, err := startProc(cmd)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.pebble = pr
	p.mu.Unlock()
	client := p.listenerClient()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := client.Get(p.DirectoryURL())
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-pr.done:
			return fmt.Errorf("pebble exited:\n%s", pr.out.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pebble directory not answering: %v\n%s", err, pr.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills pebble (the CA becomes unreachable); Start brings it back.
func (p *Pebble) Stop() {
	p.mu.Lock()
	pr := p.pebble
	p.pebble = nil
	p.mu.Unlock()
	pr.kill()
}

func (p *Pebble) stopAll() {
	p.mu.Lock()
	pr, ch := p.pebble, p.chall
	p.pebble, p.chall = nil, nil
	p.mu.Unlock()
	if p.tb != nil && p.tb.Failed() {
		if pr != nil {
			p.tb.Logf("pebble output:\n%s", tailLines(pr.out.String(), 60))
		}
		if ch != nil {
			p.tb.Logf("pebble-challtestsrv output:\n%s", tailLines(ch.out.String(), 20))
		}
	}
	pr.kill()
	ch.kill()
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Output is what pebble printed so far.
func (p *Pebble) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pebble == nil {
		return ""
	}
	return p.pebble.out.String()
}

// DirectoryURL is the ACME directory.
func (p *Pebble) DirectoryURL() string { return "https://" + p.opts.ListenAddr + "/dir" }

func (p *Pebble) listenerClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.CA.Pool()},
	}}
}

// RootPEM is the root pebble issues from (new on every Start): what a
// client must trust to accept the certificates pebble issued.
func (p *Pebble) RootPEM() []byte {
	p.tb.Helper()
	data, err := p.Roots()
	if err != nil {
		p.tb.Fatal(err)
	}
	return data
}

// Roots is RootPEM for a harness (Run).
func (p *Pebble) Roots() ([]byte, error) {
	res, err := p.listenerClient().Get("https://" + p.mgmtAddr + "/roots/0")
	if err != nil {
		return nil, fmt.Errorf("pebble roots: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("pebble roots: %s %v", res.Status, err)
	}
	return data, nil
}

// RootPool is a pool holding only RootPEM.
func (p *Pebble) RootPool() *x509.CertPool {
	p.tb.Helper()
	pool, err := p.RootCAs()
	if err != nil {
		p.tb.Fatal(err)
	}
	return pool
}

// RootCAs is RootPool for a harness (Run).
func (p *Pebble) RootCAs() (*x509.CertPool, error) {
	data, err := p.Roots()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("pebble roots: no certificate")
	}
	return pool, nil
}

// AddA makes challtestsrv answer A queries for host with addrs.
func (p *Pebble) AddA(host string, addrs ...string) {
	p.tb.Helper()
	if p.dnsMgmt == "" {
		p.tb.Fatal("pebble: AddA needs Options.DNS")
	}
	body, _ := json.Marshal(map[string]any{"host": host, "addresses": addrs})
	res, err := http.Post("http://"+p.dnsMgmt+"/add-a", "application/json", bytes.NewReader(body))
	if err != nil {
		p.tb.Fatalf("challtestsrv add-a: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		p.tb.Fatalf("challtestsrv add-a: %s", res.Status)
	}
}

// Resolver resolves through challtestsrv, so clients find the same
// addresses pebble validated.
func (p *Pebble) Resolver() *net.Resolver {
	addr := p.dnsAddr
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// String describes the instance for test logs.
func (p *Pebble) String() string {
	return fmt.Sprintf("pebble at %s (http-01 port %d, tls-alpn-01 port %d)", p.opts.ListenAddr, p.opts.HTTPPort, p.opts.TLSPort)
}
