package userdata

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wsdirect/terraform-provider-wsdirect/node"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

const testGossipKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31

func keys(t *testing.T) (pubPEM, privPEM string) {
	t.Helper()
	pub, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := token.EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k, err := token.EncodePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(p), string(k)
}

func nodeConfig(t *testing.T) Config {
	pub, _ := keys(t)
	c := DefaultConfig(RoleNode)
	c.ReleaseURL = "https://releases.example.com/v1.2.3/wsdirect-node_1.2.3_linux_amd64.tar.gz"
	c.SHA256 = strings.Repeat("ab", 32)
	c.GossipKey = testGossipKey
	c.JoinTag = "wsdirect:cluster=prod"
	c.MaxConns = 50000
	c.AuthPublicKeys = pub
	return c
}

func authConfig(t *testing.T) Config {
	_, priv := keys(t)
	c := DefaultConfig(RoleAuth)
	c.ReleaseURL = "http://10.0.0.1/wsdirect-auth"
	c.GossipKey = testGossipKey
	c.JoinTag = "wsdirect:cluster=prod"
	c.SigningKey = priv
	c.Users = "alice:$2a$10$abcdefghijklmnopqrstuv\n"
	c.AdminToken = "s3cr3t-admin"
	return c
}

type parsed struct {
	WriteFiles []struct {
		Path        string `yaml:"path"`
		Owner       string `yaml:"owner"`
		Permissions string `yaml:"permissions"`
		Content     string `yaml:"content"`
	} `yaml:"write_files"`
	RunCmd [][]string `yaml:"runcmd"`
}

// parse checks the header and that the document is valid YAML with only
// the keys cloud-init expects, and returns it.
func parse(t *testing.T, out string) (parsed, map[string]string) {
	t.Helper()
	if !strings.HasPrefix(out, "#cloud-config\n") {
		t.Fatalf("user data does not start with #cloud-config:\n%s", out)
	}
	var generic map[string]any
	if err := yaml.Unmarshal([]byte(out), &generic); err != nil {
		t.Fatalf("not valid YAML: %v\n%s", err, out)
	}
	for k := range generic {
		if k != "write_files" && k != "runcmd" {
			t.Errorf("unexpected top-level key %q", k)
		}
	}
	var p parsed
	dec := yaml.NewDecoder(strings.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode: %v", err)
	}
	files := map[string]string{}
	for _, f := range p.WriteFiles {
		files[f.Path] = f.Permissions
	}
	return p, files
}

func content(t *testing.T, p parsed, path string) string {
	t.Helper()
	for _, f := range p.WriteFiles {
		if f.Path == path {
			return f.Content
		}
	}
	t.Fatalf("no write_files entry for %s", path)
	return ""
}

func TestRenderNode(t *testing.T) {
	c := nodeConfig(t)
	c.Upstream = "ws://10.0.5.5:9000/echo"
	out, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	p, perms := parse(t, out)
	want := map[string]string{
		GossipKeyFile: "0640",
		AuthKeysFile:  "0644",
		"/etc/systemd/system/wsdirect-node.service":        "0644",
		"/usr/local/lib/wsdirect/install-wsdirect-node.sh": "0755",
	}
	for path, perm := range want {
		if perms[path] != perm {
			t.Errorf("%s: permissions %q, want %q (files: %v)", path, perms[path], perm, perms)
		}
	}
	if len(perms) != len(want) {
		t.Errorf("files %v, want exactly %v", perms, want)
	}
	if got := content(t, p, GossipKeyFile); got != testGossipKey+"\n" {
		t.Errorf("gossip key file = %q", got)
	}
	if got := content(t, p, AuthKeysFile); got != c.AuthPublicKeys {
		t.Errorf("auth keys file = %q, want the PEM verbatim", got)
	}
	if _, err := token.ParsePublicKeys([]byte(content(t, p, AuthKeysFile))); err != nil {
		t.Errorf("auth keys do not round-trip through YAML: %v", err)
	}
	unit := content(t, p, "/etc/systemd/system/wsdirect-node.service")
	wantExec := "ExecStart=/usr/local/bin/wsdirect-node -name %H -bind 0.0.0.0:8080 -advertise auto -gossip-bind 0.0.0.0:7946" +
		" -gossip-key-file /etc/wsdirect/gossip.key -join-ec2-tag wsdirect:cluster=prod -auth-keys /etc/wsdirect/auth-keys.pem" +
		" -max-conns 50000 -upstream ws://10.0.5.5:9000/echo\n"
	if !strings.Contains(unit, wantExec) {
		t.Errorf("unit lacks %q:\n%s", wantExec, unit)
	}
	for _, w := range []string{"Restart=on-failure\n", "LimitNOFILE=1048576\n", "User=wsdirect\n", "WantedBy=multi-user.target\n", "After=network-online.target\n",
		// The default drain (30 s) plus StopMargin.
		"TimeoutStopSec=60s\n"} {
		if !strings.Contains(unit, w) {
			t.Errorf("unit lacks %q", w)
		}
	}
	wantRun := [][]string{
		{"/usr/local/lib/wsdirect/install-wsdirect-node.sh"},
		{"systemctl", "daemon-reload"},
		{"systemctl", "enable", "--now", "wsdirect-node.service"},
	}
	if len(p.RunCmd) != len(wantRun) {
		t.Fatalf("runcmd = %v, want %v", p.RunCmd, wantRun)
	}
	for i := range wantRun {
		if strings.Join(p.RunCmd[i], " ") != strings.Join(wantRun[i], " ") {
			t.Errorf("runcmd[%d] = %v, want %v", i, p.RunCmd[i], wantRun[i])
		}
	}
	script := content(t, p, "/usr/local/lib/wsdirect/install-wsdirect-node.sh")
	for _, w := range []string{"url='" + c.ReleaseURL + "'", "sha256='" + c.SHA256 + "'", "sha256sum -c"} {
		if !strings.Contains(script, w) {
			t.Errorf("install script lacks %q", w)
		}
	}
}

func TestRenderAuth(t *testing.T) {
	c := authConfig(t)
	out, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	p, perms := parse(t, out)
	for _, f := range []string{GossipKeyFile, SigningKeyFile, UsersFile, AdminTokenFile} {
		if perms[f] != "0640" {
			t.Errorf("secret %s has permissions %q, want 0640", f, perms[f])
		}
	}
	if _, ok := perms[AuthKeysFile]; ok {
		t.Error("auth host got a node's auth-keys file")
	}
	if _, err := token.ParsePrivateKey([]byte(content(t, p, SigningKeyFile))); err != nil {
		t.Errorf("signing key does not round-trip: %v", err)
	}
	if got := content(t, p, UsersFile); got != c.Users {
		t.Errorf("users file = %q, want %q", got, c.Users)
	}
	unit := content(t, p, "/etc/systemd/system/wsdirect-auth.service")
	wantExec := "ExecStart=/usr/local/bin/wsdirect-auth -name auth-%H -bind 0.0.0.0:8443 -gossip-bind 0.0.0.0:7946 -gossip-key-file /etc/wsdirect/gossip.key" +
		" -join-ec2-tag wsdirect:cluster=prod -signing-key /etc/wsdirect/signing-key.pem -users /etc/wsdirect/users" +
		" -admin-token-file /etc/wsdirect/admin-token\n"
	if !strings.Contains(unit, wantExec) {
		t.Errorf("unit lacks %q:\n%s", wantExec, unit)
	}
	// The optional admin token is left out when not given.
	c.AdminToken = ""
	out, err = Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "-admin-token-file") || strings.Contains(out, AdminTokenFile) {
		t.Errorf("admin token file rendered although unset:\n%s", out)
	}
	// Without a users file the binary would have no credential backend and exit at once.
	c.Users = ""
	if _, err := Render(c); err == nil || !strings.Contains(err.Error(), "users is required for an auth host") {
		t.Errorf("auth without users rendered: %v", err)
	}
}

func TestRenderDeterministic(t *testing.T) {
	c := nodeConfig(t)
	a, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, err := Render(c)
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatal("renders of the same Config differ")
		}
	}
}

func TestSystemdQuoting(t *testing.T) {
	c := nodeConfig(t)
	c.JoinTag = "Cluster Name=prod 1"
	c.Name = "node-1"
	c.Upstream = "ws://10.0.5.5:9000/a%20b"
	out, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := parse(t, out)
	unit := content(t, p, "/etc/systemd/system/wsdirect-node.service")
	if !strings.Contains(unit, ` -join-ec2-tag "Cluster Name=prod 1" `) {
		t.Errorf("tag with a space not quoted for systemd:\n%s", unit)
	}
	if !strings.Contains(unit, ` -upstream ws://10.0.5.5:9000/a%%20b`+"\n") {
		t.Errorf("%% in upstream not escaped as a systemd specifier:\n%s", unit)
	}
	if !strings.Contains(unit, " -name node-1 ") {
		t.Errorf("explicit name not used:\n%s", unit)
	}
	if got := systemdArg(`a"b\c$d`, false); got != `"a\"b\\c$$d"` {
		t.Errorf("systemdArg = %s", got)
	}
}

func TestValidation(t *testing.T) {
	cases := []struct {
		name   string
		base   func(*testing.T) Config
		mutate func(*Config)
		want   string
	}{
		{"bad role", nodeConfig, func(c *Config) { c.Role = "haproxy" }, `role "haproxy" is not supported; use "node" or "auth"`},
		{"no url", nodeConfig, func(c *Config) { c.ReleaseURL = "" }, "release URL: is required"},
		{"ftp url", nodeConfig, func(c *Config) { c.ReleaseURL = "ftp://x/y" }, "must use scheme http or https"},
		{"file url", nodeConfig, func(c *Config) { c.ReleaseURL = "file:///tmp/x" }, "must use scheme http or https"},
		{"no host", nodeConfig, func(c *Config) { c.ReleaseURL = "https:///x" }, "has no host"},
		{"shell in url", nodeConfig, func(c *Config) { c.ReleaseURL = "https://h/x'$(reboot)" }, "must not contain whitespace, quotes"},
		{"bad sha", nodeConfig, func(c *Config) { c.SHA256 = "abc" }, "sha256 must be 64 hex digits"},
		{"no gossip key", nodeConfig, func(c *Config) { c.GossipKey = "" }, "gossip key is required"},
		{"short gossip key", nodeConfig, func(c *Config) { c.GossipKey = base64.StdEncoding.EncodeToString(make([]byte, 16)) }, "exactly 32 bytes"},
		{"junk gossip key", nodeConfig, func(c *Config) { c.GossipKey = "not base64!" }, "exactly 32 bytes"},
		{"no join tag", nodeConfig, func(c *Config) { c.JoinTag = "" }, `join tag "" must be "Key=Value"`},
		{"tag without =", nodeConfig, func(c *Config) { c.JoinTag = "wsdirect" }, "must be \"Key=Value\""},
		{"aws tag", nodeConfig, func(c *Config) { c.JoinTag = "aws:foo=bar" }, "reserved aws: prefix"},
		{"bad bind", nodeConfig, func(c *Config) { c.Bind = "8080" }, `bind "8080" must be "ip:port"`},
		{"bad gossip port", nodeConfig, func(c *Config) { c.GossipBind = "0.0.0.0:99999" }, "port must be in 1-65535"},
		{"bad name", nodeConfig, func(c *Config) { c.Name = "a b" }, `name "a b" must start`},
		{"bad advertise", nodeConfig, func(c *Config) { c.Advertise = "example.com" }, `advertise "example.com" must be "auto" or an IP`},
		{"empty bind", nodeConfig, func(c *Config) { c.Bind = "" }, `bind "" must be "ip:port"`},
		{"empty gossip bind", authConfig, func(c *Config) { c.GossipBind = "" }, `gossip bind "" must be "ip:port"`},
		{"empty name", nodeConfig, func(c *Config) { c.Name = "" }, `name "" must start`},
		{"empty advertise", nodeConfig, func(c *Config) { c.Advertise = "" }, `advertise "" must be "auto" or an IP`},
		{"auth with node defaults", authConfig, func(c *Config) { c.Name, c.Advertise = DefaultName, DefaultAdvertise }, "apply to the node role only"},
		{"negative conns", nodeConfig, func(c *Config) { c.MaxConns = -1 }, "max_conns must not be negative"},
		{"negative drain deadline", nodeConfig, func(c *Config) { c.DrainDeadline = -time.Second }, "drain deadline must be whole seconds"},
		{"drain deadline past EC2's shutdown", nodeConfig, func(c *Config) { c.DrainDeadline = 2 * time.Minute }, "drain deadline must be whole seconds"},
		{"fractional drain deadline", nodeConfig, func(c *Config) { c.DrainDeadline = 1500 * time.Millisecond }, "drain deadline must be whole seconds"},
		{"auth with drain deadline", authConfig, func(c *Config) { c.DrainDeadline = time.Second }, "apply to the node role only"},
		{"no auth keys", nodeConfig, func(c *Config) { c.AuthPublicKeys = "" }, "auth public keys are required"},
		{"bad auth keys", nodeConfig, func(c *Config) { c.AuthPublicKeys = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" }, "auth public keys:"},
		{"http upstream", nodeConfig, func(c *Config) { c.Upstream = "http://x:1/" }, "must use scheme ws or wss"},
		{"node with signing key", nodeConfig, func(c *Config) { c.SigningKey = "x" }, "apply to the auth role only"},
		{"auth without key", authConfig, func(c *Config) { c.SigningKey = "" }, "signing key is required"},
		{"auth with public key as signing key", authConfig, func(c *Config) { c.SigningKey, _ = keys(t) }, `signing key: PEM block is "PUBLIC KEY"`},
		{"auth with max conns", authConfig, func(c *Config) { c.MaxConns = 5 }, "apply to the node role only"},
		{"admin token with space", authConfig, func(c *Config) { c.AdminToken = "a b" }, "admin token must not contain whitespace"},
		{"too big", authConfig, func(c *Config) {
			c.Users = strings.Repeat("user:$2a$10$xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 300)
		}, "EC2 accepts at most 16384"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.base(t)
			tc.mutate(&c)
			out, err := Render(c)
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testGossipKey) {
				t.Error("error message leaks the gossip key")
			}
		})
	}
	if err := nodeConfig(t).Validate(); err != nil {
		t.Fatalf("baseline node config rejected: %v", err)
	}
	if err := authConfig(t).Validate(); err != nil {
		t.Fatalf("baseline auth config rejected: %v", err)
	}
}

// TestInstallScript runs the generated install script for real, under a
// scratch DESTDIR, against a loopback HTTP server: raw binary, tarball,
// correct checksum, wrong checksum and a 404.
func TestInstallScript(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "tar", "sha256sum", "install"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("CI is set but %s is missing", tool)
			}
			t.Skipf("%s not available: %v", tool, err)
		}
	}
	payload := []byte("#!/bin/sh\necho wsdirect-node fake binary\n")
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name string
		body []byte
	}{{"README.md", []byte("readme\n")}, {"wsdirect-node", payload}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/wsdirect-node":
			_, _ = w.Write(payload)
		case "/wsdirect-node_1.0.0_linux_amd64.tar.gz":
			_, _ = w.Write(tgz.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

	cases := []struct {
		name, path, sha string
		ok              bool
	}{
		{"raw binary, no checksum", "/wsdirect-node", "", true},
		{"raw binary, checksum", "/wsdirect-node", sum(payload), true},
		{"tarball, checksum", "/wsdirect-node_1.0.0_linux_amd64.tar.gz", sum(tgz.Bytes()), true},
		{"wrong checksum", "/wsdirect-node", sum([]byte("other")), false},
		{"not found", "/missing", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := nodeConfig(t)
			c.ReleaseURL = srv.URL + tc.path
			c.SHA256 = tc.sha
			out, err := Render(c)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := parse(t, out)
			dir := t.TempDir()
			script := filepath.Join(dir, "install.sh")
			if err := os.WriteFile(script, []byte(content(t, p, "/usr/local/lib/wsdirect/install-wsdirect-node.sh")), 0o755); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(dir, "root")
			cmd := exec.Command("sh", script)
			cmd.Env = append(os.Environ(), "DESTDIR="+root)
			outb, err := cmd.CombinedOutput()
			installed, readErr := os.ReadFile(filepath.Join(root, "usr/local/bin/wsdirect-node"))
			if tc.ok {
				if err != nil {
					t.Fatalf("install failed: %v\n%s", err, outb)
				}
				if readErr != nil || !bytes.Equal(installed, payload) {
					t.Fatalf("installed binary wrong: %v %q", readErr, installed)
				}
				if fi, _ := os.Stat(filepath.Join(root, "usr/local/bin/wsdirect-node")); fi.Mode().Perm() != 0o755 {
					t.Errorf("installed mode %v, want 0755", fi.Mode().Perm())
				}
				return
			}
			if err == nil {
				t.Fatalf("install succeeded but should have failed:\n%s", outb)
			}
			if readErr == nil {
				t.Fatal("a binary was installed despite the failure")
			}
			if tc.sha != "" && !strings.Contains(string(outb), "does not match") {
				t.Errorf("checksum failure not explained: %s", outb)
			}
		})
	}
}

// TestDrainDeadlineAndStopTimeout: the node's drain deadline goes on its
// command line, and systemd waits that plus StopMargin before it kills the
// process; the auth unit keeps systemd's default; and the default here is
// the binary's.
func TestDrainDeadlineAndStopTimeout(t *testing.T) {
	if d := node.DefaultConfig().DrainDeadline; d != DefaultDrainDeadline {
		t.Fatalf("DefaultDrainDeadline %s, wsdirect-node's default %s", DefaultDrainDeadline, d)
	}
	c := nodeConfig(t)
	c.DrainDeadline = 45 * time.Second
	out, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := parse(t, out)
	unit := content(t, p, "/etc/systemd/system/wsdirect-node.service")
	for _, w := range []string{" -drain-deadline 45s\n", "TimeoutStopSec=75s\n"} {
		if !strings.Contains(unit, w) {
			t.Errorf("unit lacks %q:\n%s", w, unit)
		}
	}
	out, err = Render(authConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	p, _ = parse(t, out)
	if unit := content(t, p, "/etc/systemd/system/wsdirect-auth.service"); strings.Contains(unit, "TimeoutStopSec") || strings.Contains(unit, "drain") {
		t.Errorf("auth unit has a drain stop timeout:\n%s", unit)
	}
}
