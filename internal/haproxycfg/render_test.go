package haproxycfg

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
)

var update = flag.Bool("update", false, "rewrite testdata/*.cfg golden files")

func threeNodes() []Backend {
	return []Backend{
		{Name: "node1", Address: "10.0.1.10", Port: 8080},
		{Name: "node2", Address: "10.0.1.11", Port: 8080},
		{Name: "node3", Address: "10.0.2.10", Port: 8080},
	}
}

// configs are the shapes the provider, the haproxy module and the bench
// render; every one must pass the real "haproxy -c".
func configs() map[string]Config {
	cfg := func(mod func(c *Config)) Config {
		c := DefaultConfig()
		mod(&c)
		return c
	}
	return map[string]Config{
		"default_http": cfg(func(c *Config) {
			c.Backends = threeNodes()
			c.SourceIPs = []string{"10.0.0.11", "10.0.0.12"}
		}),
		"tcp_nlb_standin": cfg(func(c *Config) {
			c.Backends = []Backend{{Address: "127.0.0.2", Port: 18080}, {Address: "127.0.0.3", Port: 18080}}
			c.SourceIPs = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}
			c.Bind = "127.0.0.1:18000"
			c.Mode = ModeTCP
			c.Balance = "roundrobin"
			c.MaxConn = 9000
			c.ServerMaxConn = 1000
		}),
		"no_source_ips": cfg(func(c *Config) {
			c.Backends = []Backend{{Name: "i-0abc", Address: "192.168.1.5", Port: DefaultBackendPort}}
		}),
		"everything": {
			Backends:            threeNodes(),
			SourceIPs:           []string{"10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"},
			Bind:                "0.0.0.0:8000",
			Mode:                ModeHTTP,
			Balance:             "random(2)",
			MaxConn:             200000,
			ServerMaxConn:       60000,
			HealthCheckPath:     "/readyz",
			HealthCheckInterval: 1500 * time.Millisecond,
			HealthCheckFall:     2,
			HealthCheckRise:     5,
			TimeoutConnect:      3 * time.Second,
			TimeoutClient:       time.Minute,
			TimeoutServer:       time.Minute,
			TimeoutTunnel:       2 * time.Hour,
			TimeoutClientFin:    10 * time.Second,
			StatsSocket:         "/run/haproxy/admin.sock",
			StatsBind:           "127.0.0.1:8404",
			Log:                 "stdout format raw local0",
		},
		"ipv6_source_balance": cfg(func(c *Config) {
			c.Backends = []Backend{{Name: "v6a", Address: "fd00::10", Port: 8080}, {Name: "v6b", Address: "fd00::11", Port: 8080}}
			c.SourceIPs = []string{"fd00::100", "fd00::101"}
			c.Bind = "[::]:80"
			c.Balance = "source"
		}),
		"hostname_backend": cfg(func(c *Config) {
			c.Backends = []Backend{{Name: "local", Address: "localhost", Port: 8080}}
			c.Mode = ModeTCP
			c.Balance = "leastconn"
		}),
	}
}

// withBackends is DefaultConfig with backends and source IPs.
func withBackends(backends []Backend, sourceIPs ...string) Config {
	c := DefaultConfig()
	c.Backends, c.SourceIPs = backends, sourceIPs
	return c
}

func TestRenderDefaults(t *testing.T) {
	cfg, err := Render(withBackends(threeNodes(), []string{"10.0.0.11", "10.0.0.12"}...))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    maxconn 100000\n",
		"    mode http\n",
		"    timeout connect 5s\n",
		"    timeout client 30s\n",
		"    timeout server 30s\n",
		"    timeout tunnel 1h\n",
		"    timeout client-fin 30s\n",
		"frontend ws_in\n    bind *:80\n",
		"    option forwardfor\n",
		"    balance leastconn\n",
		"    option httpchk GET /healthz\n",
		"    http-check expect status 200\n",
		"    server node1_src1 10.0.1.10:8080 source 10.0.0.11 check inter 2s fall 3 rise 2\n",
		"    server node1_src2 10.0.1.10:8080 source 10.0.0.12 check inter 2s fall 3 rise 2\n",
		"    server node3_src2 10.0.2.10:8080 source 10.0.0.12 check inter 2s fall 3 rise 2\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, cfg)
		}
	}
	for _, absent := range []string{"stats socket", "listen stats", "log ", " maxconn 0"} {
		if strings.Contains(cfg, absent) {
			t.Errorf("rendered config has %q, which is off by default:\n%s", absent, cfg)
		}
	}
	if n := strings.Count(cfg, "\n    server "); n != 6 {
		t.Errorf("got %d server lines, want 3 backends x 2 source IPs = 6", n)
	}
}

func TestRenderServerLinePerBackendAndSource(t *testing.T) {
	for _, k := range []int{1, 3, 8} {
		var src []string
		for i := range k {
			src = append(src, "10.0.9."+strconv.Itoa(i+1))
		}
		c := withBackends(threeNodes(), src...)
		servers, err := c.Servers()
		if err != nil {
			t.Fatal(err)
		}
		if len(servers) != 3*k {
			t.Fatalf("k=%d: %d servers, want %d", k, len(servers), 3*k)
		}
		names := map[string]bool{}
		pairs := map[string]bool{}
		for _, s := range servers {
			if names[s.Name] {
				t.Errorf("k=%d: duplicate server name %s", k, s.Name)
			}
			names[s.Name] = true
			pairs[s.Address+"|"+s.Source] = true
		}
		if len(pairs) != 3*k {
			t.Errorf("k=%d: %d distinct (backend, source) pairs, want %d", k, len(pairs), 3*k)
		}
		cfg, err := Render(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if !strings.Contains(cfg, "server "+s.Name+" "+s.Address+" source "+s.Source+" ") {
				t.Errorf("k=%d: no server line for %+v", k, s)
			}
		}
	}
}

func TestServerNamesStable(t *testing.T) {
	// Adding a source IP must not rename existing servers, so HAProxy's
	// server-state and stats stay attached across re-renders.
	a, err := withBackends(threeNodes(), []string{"10.0.0.11"}...).Servers()
	if err != nil {
		t.Fatal(err)
	}
	b, err := withBackends(threeNodes(), []string{"10.0.0.11", "10.0.0.12"}...).Servers()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]Server{}
	for _, s := range b {
		names[s.Name] = s
	}
	for _, s := range a {
		if got, ok := names[s.Name]; !ok || got != s {
			t.Errorf("server %+v changed to %+v after adding a source IP", s, got)
		}
	}
}

func TestRenderDefaultNames(t *testing.T) {
	cfg, err := Render(withBackends([]Backend{{Address: "10.0.0.1", Port: DefaultBackendPort}, {Address: "10.0.0.2", Port: 9000}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    server node1 10.0.0.1:8080 check inter 2s fall 3 rise 2\n",
		"    server node2 10.0.0.2:9000 check inter 2s fall 3 rise 2\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("missing %q in:\n%s", want, cfg)
		}
	}
}

func TestRenderTCPMode(t *testing.T) {
	cfg, err := Render(configs()["tcp_nlb_standin"])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"    mode tcp\n", "    balance roundrobin\n", "bind 127.0.0.1:18000\n", " maxconn 1000\n",
		"    server node2_src3 127.0.0.3:18080 source 127.0.0.13 check inter 2s fall 3 rise 2 maxconn 1000\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("missing %q in:\n%s", want, cfg)
		}
	}
	for _, absent := range []string{"httpchk", "forwardfor", "http-check"} {
		if strings.Contains(cfg, absent) {
			t.Errorf("tcp mode config contains HTTP-only %q", absent)
		}
	}
}

func TestRenderIPv6Brackets(t *testing.T) {
	cfg, err := Render(configs()["ipv6_source_balance"])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bind [::]:80\n", "server v6b_src2 [fd00::11]:8080 source [fd00::101] "} {
		if !strings.Contains(cfg, want) {
			t.Errorf("missing %q in:\n%s", want, cfg)
		}
	}
}

func TestRenderDeterministicAndPure(t *testing.T) {
	c := configs()["everything"]
	before := append([]Backend(nil), c.Backends...)
	a, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two renders of the same Config differ")
	}
	for i := range before {
		if c.Backends[i] != before[i] {
			t.Fatalf("Render modified its input: %+v -> %+v", before[i], c.Backends[i])
		}
	}
}

func TestRenderEnvSources(t *testing.T) {
	cfg, err := Render(withBackends(threeNodes(), "${WSDIRECT_SRC1}", "${WSDIRECT_SRC2}"))
	if err != nil {
		t.Fatal(err)
	}
	want := `    server node2_src2 10.0.1.11:8080 source "${WSDIRECT_SRC2}" check inter 2s fall 3 rise 2` + "\n"
	if !strings.Contains(cfg, want) {
		t.Fatalf("missing %q in:\n%s", want, cfg)
	}
}

func TestHAProxyExpandsEnvSources(t *testing.T) {
	bin := haproxyOrSkip(t)
	cfg, err := Render(withBackends(threeNodes(), "${WSDIRECT_SRC1}", "${WSDIRECT_SRC2}"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if res, err := Check(ctx, bin, cfg, "WSDIRECT_SRC1=10.0.0.11", "WSDIRECT_SRC2=10.0.0.12"); err != nil || len(res.Warnings) > 0 {
		t.Fatalf("with the environment set: %v %v", err, res.Warnings)
	}
	// Without the variables the source address is empty and haproxy must
	// refuse to start, rather than silently drop the source.
	if _, err := Check(ctx, bin, cfg, "WSDIRECT_SRC1=", "WSDIRECT_SRC2="); err == nil {
		t.Fatal("haproxy accepted empty source addresses")
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour:               "1h",
		90 * time.Minute:        "90m",
		30 * time.Second:        "30s",
		1500 * time.Millisecond: "1500ms",
		time.Millisecond:        "1ms",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestValidation(t *testing.T) {
	ok := func() Config { return withBackends(threeNodes(), []string{"10.0.0.11", "10.0.0.12"}...) }
	cases := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"no backends", func(c *Config) { c.Backends = nil }, []string{"at least one backend is required"}},
		{"bad backend ip", func(c *Config) { c.Backends[0].Address = "10.0.0.300" }, []string{`backend 1 ("node1"): address "10.0.0.300": is not a valid IP address`}},
		{"empty address", func(c *Config) { c.Backends[1].Address = "" }, []string{`backend 2 ("node2"): address "": must not be empty`}},
		{"junk address", func(c *Config) { c.Backends[1].Address = "10.0.0.1 check" }, []string{"neither an IP address nor a valid host name"}},
		{"port too big", func(c *Config) { c.Backends[2].Port = 70000 }, []string{"port 70000 is out of range 1-65535"}},
		{"negative port", func(c *Config) { c.Backends[2].Port = -1 }, []string{"port -1 is out of range"}},
		{"duplicate names", func(c *Config) { c.Backends[1].Name = "node1" }, []string{"name is already used by backend 1"}},
		{"bad name", func(c *Config) { c.Backends[0].Name = "node 1" }, []string{"name must start with a letter or digit"}},
		{"duplicate endpoint", func(c *Config) { c.Backends[1].Address = "10.0.1.10" }, []string{"10.0.1.10 port 8080 is already listed as backend 1"}},
		{"bad source ip", func(c *Config) { c.SourceIPs[0] = "10.0.0" }, []string{`source IP 1: "10.0.0" is neither an IP address nor an environment reference`}},
		{"lower-case env ref", func(c *Config) { c.SourceIPs[0] = "${src1}" }, []string{`source IP 1: "${src1}" is neither`}},
		{"duplicate env ref", func(c *Config) { c.SourceIPs = []string{"${SRC1}", "${SRC1}"} }, []string{"source IP 2: ${SRC1} duplicates source IP 1"}},
		{"duplicate source ip", func(c *Config) { c.SourceIPs[1] = "10.0.0.11" }, []string{"source IP 2: 10.0.0.11 duplicates source IP 1"}},
		{"unspecified source", func(c *Config) { c.SourceIPs[1] = "0.0.0.0" }, []string{"0.0.0.0 cannot be a source address"}},
		{"mixed families", func(c *Config) { c.SourceIPs[1] = "fd00::1" }, []string{"not in the same address family"}},
		{"unknown balance", func(c *Config) { c.Balance = "fastest" }, []string{`balance "fastest" is not supported`}},
		{"unknown mode", func(c *Config) { c.Mode = "udp" }, []string{`mode "udp" is not supported; use "http" or "tcp"`}},
		{"bad bind", func(c *Config) { c.Bind = "80" }, []string{`bind "80": must be "host:port"`}},
		{"bad bind port", func(c *Config) { c.Bind = "*:0" }, []string{`bind "*:0": port "0" must be a number in 1-65535`}},
		{"bad bind host", func(c *Config) { c.Bind = "eth0:80" }, []string{`host "eth0" must be '*' or an IP address`}},
		{"stats on frontend port", func(c *Config) { c.Bind = "*:80"; c.StatsBind = "*:80" }, []string{"must differ from the frontend bind"}},
		{"negative maxconn", func(c *Config) { c.MaxConn = -5 }, []string{"maxconn must be positive, got -5"}},
		{"zero port", func(c *Config) { c.Backends[0].Port = 0 }, []string{"port 0 is out of range 1-65535"}},
		{"zero config", func(c *Config) { *c = Config{Backends: c.Backends} }, []string{
			`bind "": must be "host:port"`, `mode "" is not supported`, `balance "" is not supported`, "maxconn must be positive, got 0",
			"health check fall must be positive", "health check rise must be positive", "health check interval must be at least 1ms",
			"timeout connect must be at least 1ms", "timeout tunnel must be at least 1ms"}},
		{"negative server maxconn", func(c *Config) { c.ServerMaxConn = -1 }, []string{"server maxconn must not be negative"}},
		{"bad health path", func(c *Config) { c.HealthCheckPath = "healthz" }, []string{"health check path \"healthz\" must start with '/'"}},
		{"injected health path", func(c *Config) { c.HealthCheckPath = "/x\nbackend evil" }, []string{"must start with '/' and contain no spaces"}},
		{"sub-ms timeout", func(c *Config) { c.TimeoutTunnel = time.Microsecond }, []string{"timeout tunnel must be at least 1ms"}},
		{"fractional ms", func(c *Config) { c.TimeoutConnect = 1500 * time.Microsecond }, []string{"timeout connect must be a whole number of milliseconds"}},
		{"huge timeout", func(c *Config) { c.TimeoutClient = 60 * 24 * time.Hour }, []string{"timeout client must be at most"}},
		{"negative fall", func(c *Config) { c.HealthCheckFall = -1 }, []string{"health check fall must be positive"}},
		{"bad socket", func(c *Config) { c.StatsSocket = "run/admin sock" }, []string{"stats socket"}},
		{"bad log", func(c *Config) { c.Log = "/dev/log\nglobal" }, []string{"log target"}},
		{"several at once", func(c *Config) { c.Mode = "udp"; c.Balance = "x"; c.SourceIPs = []string{"a", "a"} },
			[]string{"mode \"udp\"", "balance \"x\"", `source IP 1: "a"`, `source IP 2: "a"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.mutate(&c)
			out, err := Render(c)
			if err == nil {
				t.Fatalf("Render accepted the config:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if c.Validate() == nil {
				t.Error("Validate accepted what Render rejected")
			}
		})
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("baseline config rejected: %v", err)
	}
}

func TestGolden(t *testing.T) {
	for _, name := range []string{"default_http", "tcp_nlb_standin", "everything"} {
		t.Run(name, func(t *testing.T) {
			got, err := Render(configs()[name])
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", name+".cfg")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./haproxycfg -run TestGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("render differs from %s (re-run with -update if intended):\n%s", file, got)
			}
		})
	}
}

// haproxyOrSkip finds the real haproxy. Under CI a missing binary is a
// failure, not a skip, so the check cannot silently stop running.
func haproxyOrSkip(t *testing.T) string {
	t.Helper()
	bin, err := FindBinary()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but haproxy is unavailable: %v", err)
		}
		t.Skipf("skipping real haproxy check: %v", err)
	}
	return bin
}

func TestHAProxyAcceptsRenderedConfigs(t *testing.T) {
	bin := haproxyOrSkip(t)
	for name, c := range configs() {
		t.Run(name, func(t *testing.T) {
			cfg, err := Render(c)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := Check(ctx, bin, cfg)
			if err != nil {
				t.Fatalf("%v\nconfig:\n%s", err, cfg)
			}
			if len(res.Warnings) > 0 {
				t.Errorf("haproxy warned:\n%s\nconfig:\n%s", res.Output, cfg)
			}
		})
	}
}

// TestHAProxyCheckCanFail proves the haproxy check above is a real gate:
// the same binary rejects a config broken in ways Render refuses to emit.
func TestHAProxyCheckCanFail(t *testing.T) {
	bin := haproxyOrSkip(t)
	cfg, err := Render(configs()["default_http"])
	if err != nil {
		t.Fatal(err)
	}
	for name, broken := range map[string]string{
		"bad balance":    strings.Replace(cfg, "balance leastconn", "balance fastest", 1),
		"bare ipv6 src":  regexp.MustCompile(`source 10\.0\.0\.11`).ReplaceAllString(cfg, "source fd00::6"),
		"duplicate name": strings.Replace(cfg, "server node1_src2 ", "server node1_src1 ", 1),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := Check(ctx, bin, broken)
		cancel()
		if err == nil {
			t.Errorf("%s: haproxy -c accepted a broken config", name)
		}
	}
}

// TestRenderTLSFrontend: with a certificate file the frontend terminates
// TLS, and the real haproxy accepts the result with a real certificate.
func TestRenderTLSFrontend(t *testing.T) {
	ca, err := testca.New("haproxycfg test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(t.TempDir(), "haproxy.pem")
	if err := leaf.WriteBundle(pemFile); err != nil {
		t.Fatal(err)
	}
	c := configs()["default_http"]
	c.TLSCertFile = pemFile
	cfg, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" ssl crt " + pemFile + " ssl-min-ver TLSv1.2 alpn http/1.1\n", "http-request set-header X-Forwarded-Proto https\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("missing %q in:\n%s", want, cfg)
		}
	}
	c.TLSCertFile = "relative.pem"
	if _, err := Render(c); err == nil {
		t.Error("a relative certificate path was accepted")
	}
	bin := haproxyOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Check(ctx, bin, cfg); err != nil {
		t.Fatalf("%v\nconfig:\n%s", err, cfg)
	}
}
