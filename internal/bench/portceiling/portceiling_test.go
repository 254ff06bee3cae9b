package portceiling

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
)

// TestMain lets the test binary double as the client process: Run
// re-executes it inside the namespace with ClientEnv set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(ClientEnv); spec != "" {
		if err := ClientMain(context.Background(), spec, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Environment knobs for a bigger manual run (docs/benchmarks.md).
const (
	// portsEnv sets the port range size (default DefaultPorts).
	portsEnv = "WSDIRECT_CEILING_PORTS"
	// modeEnv picks HAProxy's mode: http (default), tcp, or both.
	modeEnv = "WSDIRECT_CEILING_MODE"
)

// requirements skips the test when this machine cannot run it, except in
// CI, where a missing tool is a broken setup and fails the test.
func requirements(t *testing.T) (haproxy string) {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but %s", why)
		}
		t.Skip(why)
	}
	if err := Prerequisites(); err != nil {
		missing(err.Error())
	}
	bin, err := haproxycfg.FindBinary()
	if err != nil {
		missing(err.Error())
	}
	return bin
}

// buildNode builds the real wsdirect-node binary.
func buildNode(t *testing.T) string {
	t.Helper()
	// go test puts its own GOROOT/bin first on PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go command to build wsdirect-node with")
	}
	out := filepath.Join(t.TempDir(), "wsdirect-node")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/wsdirect/terraform-provider-wsdirect/cmd/wsdirect-node")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build wsdirect-node: %v\n%s", err, b)
	}
	return out
}

func hostPortRange(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(PortRangeSysctl)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestPortCeiling is the article's port ceiling, reproduced small: in a
// namespace whose ephemeral range holds about 1,000 ports, HAProxy with
// one source IP carries about 1,000 connections to one node, three source
// IPs carry about three times that, and clients connecting to the node
// directly are not limited by the range at all.
func TestPortCeiling(t *testing.T) {
	haproxy := requirements(t)
	ports := DefaultPorts
	if v := os.Getenv(portsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > MaxPorts {
			t.Fatalf("%s=%q: want a number of ports in 100-%d", portsEnv, v, MaxPorts)
		}
		ports = n
	}
	if raceEnabled && 3*ports > 6000 {
		t.Fatalf("%s=%d needs %d client goroutines; the race detector allows 8,128: run without -race", portsEnv, ports, 3*ports)
	}
	modes := []string{haproxycfg.ModeHTTP}
	switch m := os.Getenv(modeEnv); m {
	case "", haproxycfg.ModeHTTP:
	case haproxycfg.ModeTCP:
		modes = []string{haproxycfg.ModeTCP}
	case "both":
		modes = []string{haproxycfg.ModeHTTP, haproxycfg.ModeTCP}
	default:
		t.Fatalf("%s=%q: want http, tcp or both", modeEnv, m)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Ports = ports
	cfg.NodeBinary = buildNode(t)
	cfg.HAProxyBinary = haproxy
	cfg.ClientCommand = []string{self, "-test.run=^$"}
	cfg.Dir = t.TempDir()
	hostRange := hostPortRange(t)

	var results []Result
	run := func(t *testing.T, mode string, p Path) Result {
		t.Helper()
		ctx := context.Background()
		tag := "direct"
		if p.SourceIPs > 0 {
			tag = fmt.Sprintf("%s-src%d", mode, p.SourceIPs)
		}
		ns, err := NewScratchNamespace(ctx, tag)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := ns.Delete(); err != nil {
				t.Error(err)
			}
		})
		c := cfg
		if mode != "" { // the direct path has no HAProxy, so no mode
			c.Mode = mode
		}
		res, err := Run(ctx, ns, c, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostPortRange(t); got != hostRange {
			t.Fatalf("the machine's own port range changed from %q to %q", hostRange, got)
		}
		t.Logf("%s: %d held (%d opened) of %d attempts in %s; failures %v; stopped early: %v",
			p, res.Alive, res.Connected, res.Attempts, res.Elapsed.Round(time.Millisecond), res.Failures, res.StoppedEarly)
		for _, s := range res.Samples {
			t.Logf("  e.g. %s", s)
		}
		// The clients were spread so that their own ports never ran
		// out: any ceiling seen is HAProxy's.
		if n := res.Failures[FailClientPorts]; n > 0 {
			t.Errorf("%s: %d attempts failed for lack of client-side ports; the client, not the path, was measured", p, n)
		}
		if res.Alive != res.Connected {
			t.Errorf("%s: %d connections opened but only %d were still alive when all were held", p, res.Connected, res.Alive)
		}
		results = append(results, res)
		return res
	}

	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			one := run(t, mode, HAProxy(1))
			if lo, hi := 0.8*float64(ports), 1.05*float64(ports); float64(one.Alive) < lo || float64(one.Alive) > hi {
				t.Errorf("HAProxy with 1 source IP held %d connections; want the ceiling, %.0f-%.0f for %d ports", one.Alive, lo, hi, ports)
			}
			if !one.StoppedEarly {
				t.Errorf("HAProxy with 1 source IP never hit a ceiling (%d attempts, %d held)", one.Attempts, one.Alive)
			}
			// And HAProxy says why: connect() to the node found no free
			// port for its source IP.
			if one.HAProxyNoFreePorts == 0 {
				t.Errorf("HAProxy with 1 source IP never reported %q; its output ends:\n%s", noFreePorts, tail(one.HAProxyLog, 3000))
			}
			three := run(t, mode, HAProxy(3))
			if float64(three.Alive) < 2.5*float64(one.Alive) {
				t.Errorf("HAProxy with 3 source IPs held %d connections; want at least 2.5 × %d", three.Alive, one.Alive)
			}
		})
	}
	t.Run("direct", func(t *testing.T) {
		direct := run(t, "", Direct())
		if direct.Alive != direct.Target || len(direct.Failures) != 0 {
			t.Errorf("direct: %d of %d connections held, failures %v; want all, with the same %d-port range", direct.Alive, direct.Target, direct.Failures, ports)
		}
	})
	t.Logf("port ceiling (%s=%d):\n%s", portsEnv, ports, Table(results))
}

func TestParsePortRange(t *testing.T) {
	lo, hi, err := ParsePortRange([]byte("32768\t60999\n"))
	if err != nil || lo != 32768 || hi != 60999 {
		t.Errorf("got %d %d %v", lo, hi, err)
	}
	for _, bad := range []string{"", "1", "a b", "1 2 3"} {
		if _, _, err := ParsePortRange([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	good := DefaultConfig()
	good.NodeBinary, good.ClientCommand, good.Dir = "n", []string{"c"}, "d"
	if err := good.validate(); err != nil {
		t.Fatalf("good config rejected: %v", err)
	}
	// Each key is the field the error must name: Run fills nothing in.
	for field, mod := range map[string]func(*Config){
		"Ports":             func(c *Config) { c.Ports = MaxPorts + 1 },
		"PortRangeStart":    func(c *Config) { c.PortRangeStart = 65000 },
		"Mode":              func(c *Config) { c.Mode = "udp" },
		"NodeBinary":        func(c *Config) { c.NodeBinary = "" },
		"ClientCommand":     func(c *Config) { c.ClientCommand = nil },
		"Dir":               func(c *Config) { c.Dir = "" },
		"Workers":           func(c *Config) { c.Workers = 0 },
		"StopAfterFailures": func(c *Config) { c.StopAfterFailures = 0 },
		"Timeout":           func(c *Config) { c.Timeout = 0 },
	} {
		c := good
		mod(&c)
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
	if err := (ClientSpec{}).validate(); err == nil {
		t.Error("empty client spec accepted")
	}
	var out strings.Builder
	if err := ClientMain(context.Background(), "{", &out); err == nil || !strings.Contains(err.Error(), ClientEnv) {
		t.Errorf("bad spec: %v", err)
	}
	if err := ClientMain(context.Background(), "{}", &out); err == nil || out.Len() != 0 {
		t.Errorf("empty spec: %v, output %q", err, out.String())
	}
}

func TestNamespaceNames(t *testing.T) {
	for _, bad := range []string{"", "-x", "a b", "../etc", strings.Repeat("a", 49)} {
		if _, err := NewNamespace(context.Background(), bad); err == nil {
			t.Errorf("namespace name %q accepted", bad)
		}
	}
}
