package localcloud

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeFile(t *testing.T, root, path, content string) {
	t.Helper()
	p := rootPath(root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadUnit(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "/etc/systemd/system/app.service", `# a comment
[Unit]
Description=An app
After=network-online.target
StartLimitBurst=3

[Service]
Type=simple
User=app
Environment="A=1 2" B=3
EnvironmentFile=-/etc/app.env
ExecStart=/usr/bin/app \
  -flag "quoted value" \
  -other=x
Restart=on-failure
RestartSec=2s
TimeoutStopSec=1min 30s
KillSignal=SIGINT
LimitNOFILE=4096:8192
ProtectSystem=full
StateDirectory=app app/cache
StateDirectoryMode=0700
Frobnicate=yes

[Install]
WantedBy=multi-user.target
`)
	// A drop-in replaces ExecStart (after resetting it) and adds to the environment.
	writeFile(t, root, "/etc/systemd/system/app.service.d/10-override.conf", "[Service]\nExecStart=\nExecStart=/usr/bin/app -v\nEnvironment=C=4\n")
	spec, err := loadUnit(root, "app.service")
	if err != nil {
		t.Fatal(err)
	}
	want := &unitSpec{
		Name: "app.service", Description: "An app", Type: "simple", ExecStart: []string{"/usr/bin/app -v"},
		User: "app", Environment: []string{"A=1 2", "B=3", "C=4"}, EnvironmentFiles: []string{"-/etc/app.env"},
		Restart: "on-failure", RestartDelay: 2 * time.Second, StopTimeout: 90 * time.Second, KillSignal: syscall.SIGINT,
		KillMode: "control-group", LimitNOFILE: 4096, StartLimitInterval: 10 * time.Second, StartLimitBurst: 3,
		StateDirectories: []string{"app", "app/cache"}, StateDirectoryMode: 0o700,
		WantedBy: []string{"multi-user.target"},
		Warnings: []string{
			"ProtectSystem=full is accepted but not enforced by the local cloud.",
			"Unknown key name 'Frobnicate' in section 'Service', ignoring.",
		},
	}
	if !reflect.DeepEqual(spec, want) {
		t.Fatalf("spec\n got %+v\nwant %+v", spec, want)
	}

	for name, tc := range map[string]struct{ unit, want string }{
		"missing":       {"", "unit nope.service not found"},
		"no ExecStart":  {"[Service]\nType=simple\n", "lacks an ExecStart= setting"},
		"two commands":  {"[Service]\nExecStart=/a\nExecStart=/b\n", "more than one ExecStart="},
		"unsupported":   {"[Service]\nExecStart=/a\nExecStartPre=/b\n", "ExecStartPre= is not supported"},
		"forking":       {"[Service]\nType=forking\nExecStart=/a\n", "type forking is not supported"},
		"bad restart":   {"[Service]\nExecStart=/a\nRestart=sometimes\n", "invalid Restart=sometimes"},
		"bad time span": {"[Service]\nExecStart=/a\nRestartSec=soon\n", `invalid time span "soon"`},
		"no section":    {"ExecStart=/a\n", "outside of a section"},
		"state outside": {"[Service]\nExecStart=/a\nStateDirectory=../etc\n", "invalid StateDirectory"},
		"state mode":    {"[Service]\nExecStart=/a\nStateDirectoryMode=rwx\n", "invalid StateDirectoryMode"},
	} {
		t.Run(name, func(t *testing.T) {
			n := "nope.service"
			if tc.unit != "" {
				n = "bad.service"
				writeFile(t, root, "/lib/systemd/system/"+n, tc.unit)
			}
			if _, err := loadUnit(root, n); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("loadUnit: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseTimespan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90": 90 * time.Second, "2s": 2 * time.Second, "500ms": 500 * time.Millisecond, "1min 30s": 90 * time.Second,
		"1h": time.Hour, "0.5": 500 * time.Millisecond, "2 min": 2 * time.Minute,
	} {
		if got, err := parseTimespan(in); err != nil || got != want {
			t.Errorf("parseTimespan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "s", "3 fortnights", "-1s"} {
		if _, err := parseTimespan(bad); err == nil {
			t.Errorf("parseTimespan(%q) accepted", bad)
		}
	}
}

func TestParseExecLine(t *testing.T) {
	spec := specifierEnv{Unit: "wsdirect-node.service", Hostname: "ip-127-10-1-5.ec2.internal", User: "wsdirect", Home: "/home/wsdirect", Machine: "m", Boot: "b"}
	env := map[string]string{"OPTS": "-a 1  -b 2", "REGION": "us-east-1"}
	for _, tc := range []struct {
		line string
		want []string
		fail bool
	}{
		// The renderer's own line: %H is a specifier, %% and $$ are literals.
		{line: `/usr/local/bin/wsdirect-node -name %H -join-ec2-tag "Cluster Name=prod 1" -x 100%% -y $$HOME`,
			want: []string{"/usr/local/bin/wsdirect-node", "-name", "ip-127-10-1-5.ec2.internal", "-join-ec2-tag", "Cluster Name=prod 1", "-x", "100%", "-y", "$HOME"}},
		{line: `/bin/app %n %N %l %u %h`, want: []string{"/bin/app", "wsdirect-node.service", "wsdirect-node", "ip-127-10-1-5", "wsdirect", "/home/wsdirect"}},
		// $VAR alone splits into words; ${VAR} stays one.
		{line: `/bin/app $OPTS --region=${REGION} '${OPTS}'`, want: []string{"/bin/app", "-a", "1", "-b", "2", "--region=us-east-1", "-a 1  -b 2"}},
		{line: `:/bin/app $OPTS`, want: []string{"/bin/app", "$OPTS"}},
		{line: `-/bin/app "a \"b\" \\c"`, want: []string{"/bin/app", `a "b" \c`}},
		{line: `/bin/app %Z`, fail: true},
		{line: `bin/app`, fail: true},
		{line: `+/bin/app`, fail: true},
		{line: `/bin/app "open`, fail: true},
	} {
		cmd, err := parseExecLine(tc.line, spec, env)
		if tc.fail {
			if err == nil {
				t.Errorf("%s: accepted as %q", tc.line, cmd.Argv)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(cmd.Argv, tc.want) {
			t.Errorf("%s:\n got %q %v\nwant %q", tc.line, cmd.Argv, err, tc.want)
		}
	}
	if cmd, _ := parseExecLine(`-/bin/app`, spec, env); !cmd.IgnoreFailed {
		t.Error("'-' prefix not noted")
	}
}

func TestAdaptArgs(t *testing.T) {
	priv := netip.MustParseAddr("127.10.1.5")
	got, listens := adaptArgs([]string{"/usr/local/bin/app", "-bind", "0.0.0.0:8080", "-gossip=[::]:7946", "-http", ":9090",
		"-key", "/etc/app/key", "-conf=/etc/../../etc/app.conf", "-advertise", "auto", "-peer", "10.0.0.1:7946", "-url", "http://x/y"}, "/r", priv)
	want := []string{"/r/usr/local/bin/app", "-bind", "127.10.1.5:8080", "-gossip=127.10.1.5:7946", "-http", "127.10.1.5:9090",
		"-key", "/r/etc/app/key", "-conf=/r/etc/app.conf", "-advertise", "auto", "-peer", "10.0.0.1:7946", "-url", "http://x/y"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("adaptArgs\n got %q\nwant %q", got, want)
	}
	wantListens := []netip.AddrPort{netip.MustParseAddrPort("127.10.1.5:8080"), netip.MustParseAddrPort("127.10.1.5:7946"), netip.MustParseAddrPort("127.10.1.5:9090")}
	if !reflect.DeepEqual(listens, wantListens) {
		t.Fatalf("listen addresses %v, want %v", listens, wantListens)
	}
}

func TestReadEnvironmentFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(p, []byte("# comment\nAWS_REGION=eu-west-1\nexport A=\"quoted value\"\n; other\nB='x'\nnot a line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readEnvironmentFile(p)
	if err != nil || !reflect.DeepEqual(got, []string{"AWS_REGION=eu-west-1", "A=quoted value", "B=x"}) {
		t.Fatalf("readEnvironmentFile: %q %v", got, err)
	}
}
