package userdata

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
	"github.com/wsdirect/terraform-provider-wsdirect/node"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

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

func nodeConfig(t *testing.T) Config { return nodeConfigTLS(t, DefaultTLS) }

func nodeConfigTLS(t *testing.T, tls string) Config {
	pub, _ := keys(t)
	c := DefaultConfigTLS(RoleNode, tls)
	c.ReleaseURL = "https://releases.example.com/v1.2.3/wsdirect-node_1.2.3_linux_amd64.tar.gz"
	c.SHA256 = strings.Repeat("ab", 32)
	c.GossipKeyParameter = "/wsdirect/prod/gossip-key"
	c.JoinTag = "wsdirect:cluster=prod"
	c.MaxConns = 50000
	c.AuthPublicKeys = pub
	return c
}

func authConfig(t *testing.T) Config { return authConfigTLS(t, DefaultTLS) }

func authConfigTLS(_ *testing.T, tls string) Config {
	c := DefaultConfigTLS(RoleAuth, tls)
	c.ReleaseURL = "http://10.0.0.1/wsdirect-auth"
	c.GossipKeyParameter = "/wsdirect/prod/gossip-key"
	c.JoinTag = "wsdirect:cluster=prod"
	c.SigningKeyParameter = "/wsdirect/prod/signing-key"
	c.UsersParameter = "/wsdirect/prod/users"
	c.AdminTokenParameter = "/wsdirect/prod/admin-token"
	if tls == TLSACME {
		c.TLSNames = []string{"auth.example.com"}
	}
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
		AuthKeysFile: "0644",
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
	if got := content(t, p, AuthKeysFile); got != c.AuthPublicKeys {
		t.Errorf("auth keys file = %q, want the PEM verbatim", got)
	}
	if _, err := token.ParsePublicKeys([]byte(content(t, p, AuthKeysFile))); err != nil {
		t.Errorf("auth keys do not round-trip through YAML: %v", err)
	}
	unit := content(t, p, "/etc/systemd/system/wsdirect-node.service")
	wantExec := "ExecStart=/usr/local/bin/wsdirect-node -name %H -bind 0.0.0.0:443 -advertise auto -gossip-bind 0.0.0.0:7946" +
		" -gossip-key-file ssm:///wsdirect/prod/gossip-key -join-ec2-tag wsdirect:cluster=prod -auth-keys /etc/wsdirect/auth-keys.pem" +
		" -max-conns 50000 -upstream ws://10.0.5.5:9000/echo -tls acme -acme-http-bind 0.0.0.0:80 -acme-storage /var/lib/wsdirect/acme\n"
	if !strings.Contains(unit, wantExec) {
		t.Errorf("unit lacks %q:\n%s", wantExec, unit)
	}
	for _, w := range []string{"Restart=on-failure\n", "StartLimitIntervalSec=0\n", "LimitNOFILE=1048576\n", "User=wsdirect\n", "WantedBy=multi-user.target\n", "After=network-online.target\n",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE\n", "StateDirectory=wsdirect\n", "StateDirectoryMode=0700\n",
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
	for _, w := range []string{"url='" + c.ReleaseURL + "'", "sha256='" + c.SHA256 + "'", "sha256sum -c",
		// No write_files entry may make the directory the env file goes to.
		"mkdir -p /etc/wsdirect\n  chgrp -R wsdirect /etc/wsdirect\n"} {
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
	want := map[string]string{
		"/etc/systemd/system/wsdirect-auth.service":        "0644",
		"/usr/local/lib/wsdirect/install-wsdirect-auth.sh": "0755",
	}
	if len(perms) != len(want) {
		t.Errorf("files %v, want exactly %v: an auth host gets no key file", perms, want)
	}
	unit := content(t, p, "/etc/systemd/system/wsdirect-auth.service")
	wantExec := "ExecStart=/usr/local/bin/wsdirect-auth -name auth-%H -bind 0.0.0.0:443 -gossip-bind 0.0.0.0:7946 -gossip-key-file ssm:///wsdirect/prod/gossip-key" +
		" -join-ec2-tag wsdirect:cluster=prod -signing-key ssm:///wsdirect/prod/signing-key -users ssm:///wsdirect/prod/users" +
		" -admin-token-file ssm:///wsdirect/prod/admin-token -tls acme -tls-names auth.example.com -acme-http-bind 0.0.0.0:80 -acme-storage /var/lib/wsdirect/acme\n"
	if !strings.Contains(unit, wantExec) {
		t.Errorf("unit lacks %q:\n%s", wantExec, unit)
	}
	// The admin API is optional.
	c.AdminTokenParameter = ""
	out, err = Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "-admin-token-file") {
		t.Errorf("admin token flag rendered although unset:\n%s", out)
	}
}

// TestRenderHoldsNoSecret renders both roles from parameters and checks
// the user data: no PEM private key, no base64 key, no bcrypt hash; only
// parameter names, and a node whose public keys come from a parameter gets
// no key file at all.
func TestRenderHoldsNoSecret(t *testing.T) {
	n := nodeConfig(t)
	n.AuthPublicKeys, n.AuthPublicKeysParameter = "", "/wsdirect/prod/auth-public-keys"
	n.AdminTokenParameter = "/wsdirect/prod/node-admin-token"
	for _, c := range []Config{n, authConfig(t)} {
		out, err := Render(c)
		if err != nil {
			t.Fatal(err)
		}
		p, perms := parse(t, out)
		if len(perms) != 2 {
			t.Errorf("%s: files %v, want only the unit and the install script", c.Role, perms)
		}
		for _, bad := range []string{"PRIVATE KEY", "PUBLIC KEY", "$2a$", "$2b$", "$2y$", "=\n"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s: user data holds %q:\n%s", c.Role, bad, out)
			}
		}
		unit := content(t, p, "/etc/systemd/system/wsdirect-"+c.Role+".service")
		if c.Role == RoleNode && !strings.Contains(unit, " -auth-keys ssm:///wsdirect/prod/auth-public-keys ") ||
			c.Role == RoleNode && !strings.Contains(unit, " -admin-token-file ssm:///wsdirect/prod/node-admin-token ") {
			t.Errorf("node unit does not read its keys and token from parameters:\n%s", unit)
		}
	}
}

// TestRenderTLSModes: each TLS mode renders the binaries' flags, ports and
// systemd settings it needs, and no secret of the TLS key is ever in the
// user data.
func TestRenderTLSModes(t *testing.T) {
	unitOf := func(t *testing.T, c Config) string {
		t.Helper()
		out, err := Render(c)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := parse(t, out)
		return content(t, p, "/etc/systemd/system/wsdirect-"+c.Role+".service")
	}
	t.Run("acme names", func(t *testing.T) {
		c := nodeConfig(t)
		c.Advertise = "%l.ws.example.com"
		c.TLSNames = []string{"%l.ws.example.com"}
		c.ACMEEmail, c.ACMEDirectory, c.ACMEProfile = "ops@example.com", "https://ca.example.com/dir", "tlsserver"
		c.ACMECARoot = testCARoot(t)
		out, err := Render(c)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := parse(t, out)
		unit := content(t, p, "/etc/systemd/system/wsdirect-node.service")
		for _, w := range []string{" -advertise %l.ws.example.com ", " -tls-names %l.ws.example.com ",
			" -acme-directory https://ca.example.com/dir -acme-email ops@example.com -acme-profile tlsserver -acme-ca-root /etc/wsdirect/acme-ca-root.pem"} {
			if !strings.Contains(unit, w) {
				t.Errorf("unit lacks %q:\n%s", w, unit)
			}
		}
		if got := content(t, p, ACMECARootFile); got != c.ACMECARoot {
			t.Errorf("CA root file = %q", got)
		}
	})
	t.Run("acme auth by address", func(t *testing.T) {
		// No name: an IP certificate for the host's public address, read
		// from instance metadata, with the challenge on the bind address.
		c := authConfig(t)
		c.TLSNames, c.Bind = nil, "10.0.0.5:443"
		unit := unitOf(t, c)
		if !strings.Contains(unit, " -bind 10.0.0.5:443 ") || !strings.Contains(unit, " -tls acme -tls-names auto -acme-http-bind 10.0.0.5:80 -acme-storage /var/lib/wsdirect/acme\n") {
			t.Errorf("auth acme unit without names:\n%s", unit)
		}
	})
	t.Run("files", func(t *testing.T) {
		c := authConfigTLS(t, TLSFiles)
		unit := unitOf(t, c)
		if !strings.Contains(unit, " -bind 0.0.0.0:443 ") || !strings.Contains(unit, " -tls files -tls-cert /etc/wsdirect/tls/cert.pem -tls-key /etc/wsdirect/tls/key.pem\n") {
			t.Errorf("files unit:\n%s", unit)
		}
		if !strings.Contains(unit, "AmbientCapabilities=CAP_NET_BIND_SERVICE") || strings.Contains(unit, "StateDirectory") {
			t.Errorf("files on :443 needs the bind capability and no state directory:\n%s", unit)
		}
	})
	t.Run("files with the key in a parameter", func(t *testing.T) {
		c := nodeConfigTLS(t, TLSFiles)
		c.TLSKeyFile, c.TLSKeyParameter = "", "/wsdirect/prod/tls-key"
		unit := unitOf(t, c)
		if !strings.Contains(unit, " -tls files -tls-cert /etc/wsdirect/tls/cert.pem -tls-key ssm:///wsdirect/prod/tls-key\n") {
			t.Errorf("files unit with the key parameter:\n%s", unit)
		}
	})
	t.Run("offload", func(t *testing.T) {
		c := nodeConfigTLS(t, TLSOffload)
		c.AdvertisePort = 443
		unit := unitOf(t, c)
		if !strings.Contains(unit, " -bind 0.0.0.0:8080 -advertise auto -advertise-port 443 ") || !strings.Contains(unit, " -tls offload\n") {
			t.Errorf("offload unit:\n%s", unit)
		}
		if strings.Contains(unit, "AmbientCapabilities") {
			t.Errorf("offload on 8080 got the bind capability:\n%s", unit)
		}
	})
	t.Run("off on loopback", func(t *testing.T) {
		c := nodeConfigTLS(t, TLSOff)
		c.Bind = "127.0.0.1:8080"
		if unit := unitOf(t, c); !strings.Contains(unit, " -tls off\n") {
			t.Errorf("off unit:\n%s", unit)
		}
	})
}

// TestDefaultConfigTLS: the defaults that depend on the TLS mode, per role.
func TestDefaultConfigTLS(t *testing.T) {
	for _, tc := range []struct {
		role, tls, bind, cert, key string
	}{
		{RoleNode, TLSACME, DefaultTLSBind, "", ""},
		{RoleAuth, TLSACME, DefaultTLSBind, "", ""},
		{RoleNode, TLSFiles, DefaultTLSBind, DefaultTLSCertFile, DefaultTLSKeyFile},
		{RoleAuth, TLSFiles, DefaultTLSBind, DefaultTLSCertFile, DefaultTLSKeyFile},
		{RoleNode, TLSOffload, DefaultNodeBind, "", ""},
		{RoleAuth, TLSOffload, DefaultAuthBind, "", ""},
		{RoleNode, TLSOff, DefaultNodeBind, "", ""},
	} {
		c := DefaultConfigTLS(tc.role, tc.tls)
		if c.TLS != tc.tls || c.Bind != tc.bind || c.TLSCertFile != tc.cert || c.TLSKeyFile != tc.key || c.GossipBind != DefaultGossipBind {
			t.Errorf("DefaultConfigTLS(%s, %s) = tls %q bind %q cert %q key %q gossip %q", tc.role, tc.tls, c.TLS, c.Bind, c.TLSCertFile, c.TLSKeyFile, c.GossipBind)
		}
	}
	if d := DefaultConfig(RoleNode); d.TLS != DefaultTLS || d.Bind != DefaultTLSBind {
		t.Errorf("DefaultConfig(node) = tls %q bind %q", d.TLS, d.Bind)
	}
}

// testCARoot is a PEM root certificate, as an operator's private CA's.
func testCARoot(t *testing.T) string {
	t.Helper()
	ca, err := testca.New("userdata test CA")
	if err != nil {
		t.Fatal(err)
	}
	return string(ca.PEM)
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
	if !strings.Contains(unit, ` -upstream ws://10.0.5.5:9000/a%%20b `) {
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
		{"no gossip key", nodeConfig, func(c *Config) { c.GossipKeyParameter = "" }, "gossip key parameter is required (an SSM Parameter Store name such as /wsdirect/prod/gossip-key)"},
		{"relative gossip key", nodeConfig, func(c *Config) { c.GossipKeyParameter = "wsdirect/prod/gossip-key" }, "gossip key parameter: SSM parameter name \"wsdirect/prod/gossip-key\" must start with '/'"},
		{"gossip key reference", nodeConfig, func(c *Config) { c.GossipKeyParameter = "ssm:///wsdirect/prod/gossip-key" }, "without ssm://"},
		{"gossip key value", nodeConfig, func(c *Config) { c.GossipKeyParameter = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" }, "may hold only letters"},
		{"reserved name", authConfig, func(c *Config) { c.UsersParameter = "/aws/users" }, "may not start with \"aws\""},
		{"bad admin token name", authConfig, func(c *Config) { c.AdminTokenParameter = "/a b" }, "admin token parameter"},
		{"no join tag", nodeConfig, func(c *Config) { c.JoinTag = "" }, `join tag "" must be "Key=Value"`},
		{"tag without =", nodeConfig, func(c *Config) { c.JoinTag = "wsdirect" }, "must be \"Key=Value\""},
		{"aws tag", nodeConfig, func(c *Config) { c.JoinTag = "aws:foo=bar" }, "reserved aws: prefix"},
		{"bad bind", nodeConfig, func(c *Config) { c.Bind = "8080" }, `bind "8080" must be "ip:port"`},
		{"bad gossip port", nodeConfig, func(c *Config) { c.GossipBind = "0.0.0.0:99999" }, "port must be in 1-65535"},
		{"bad name", nodeConfig, func(c *Config) { c.Name = "a b" }, `name "a b" must start`},
		{"bad advertise", nodeConfig, func(c *Config) { c.Advertise = "not a name" }, `advertise "not a name" must be "auto", an IP address or a DNS name`},
		{"bad tls mode", nodeConfig, func(c *Config) { c.TLS = "sometimes" }, `tls "sometimes" is not supported`},
		{"empty tls mode", nodeConfig, func(c *Config) { c.TLS = "" }, `tls "" is not supported`},
		{"plain off loopback", nodeConfig, func(c *Config) { c.TLS = TLSOff }, `tls "off" needs a loopback bind`},
		{"bad tls name", nodeConfig, func(c *Config) { c.TLSNames = []string{"a b"} }, `tls name "a b" is neither`},
		{"cert path with space", nodeConfig, func(c *Config) { c.TLS, c.TLSCertFile, c.TLSKeyFile = TLSFiles, "/etc/my cert.pem", DefaultTLSKeyFile }, "must be an absolute path"},
		{"files without paths", nodeConfig, func(c *Config) { c.TLS = TLSFiles }, `tls cert file "" must be an absolute path`},
		{"key file and parameter", nodeConfig, func(c *Config) {
			c.TLS, c.TLSCertFile, c.TLSKeyFile, c.TLSKeyParameter = TLSFiles, DefaultTLSCertFile, DefaultTLSKeyFile, "/wsdirect/prod/tls-key"
		}, "give the tls key file or its parameter, not both"},
		{"key parameter reference", nodeConfig, func(c *Config) {
			c.TLS, c.TLSCertFile, c.TLSKeyParameter = TLSFiles, DefaultTLSCertFile, "ssm:///wsdirect/prod/tls-key"
		}, "tls key parameter \"ssm:///wsdirect/prod/tls-key\": give the parameter name without ssm://"},
		{"key parameter with acme", nodeConfig, func(c *Config) { c.TLSKeyParameter = "/wsdirect/prod/tls-key" }, `apply to tls "files" only`},
		{"cert file with acme", nodeConfig, func(c *Config) { c.TLSCertFile = "/etc/c.pem" }, `apply to tls "files" only`},
		{"acme email with files", nodeConfig, func(c *Config) { c.TLS, c.ACMEEmail = TLSFiles, "a@b.c" }, `apply to tls "acme" only`},
		{"http directory", nodeConfig, func(c *Config) { c.ACMEDirectory = "http://ca.example.com/dir" }, "must use scheme https"},
		{"bad email", nodeConfig, func(c *Config) { c.ACMEEmail = "ops" }, "not an e-mail address"},
		{"bad profile", nodeConfig, func(c *Config) { c.ACMEProfile = "short lived" }, "acme profile"},
		{"bad ca root", nodeConfig, func(c *Config) { c.ACMECARoot = "nope" }, "acme CA root must be a PEM CERTIFICATE"},
		{"advertise port on auth", authConfig, func(c *Config) { c.AdvertisePort = 443 }, "apply to the node role only"},
		{"empty bind", nodeConfig, func(c *Config) { c.Bind = "" }, `bind "" must be "ip:port"`},
		{"empty gossip bind", authConfig, func(c *Config) { c.GossipBind = "" }, `gossip bind "" must be "ip:port"`},
		{"empty name", nodeConfig, func(c *Config) { c.Name = "" }, `name "" must start`},
		{"empty advertise", nodeConfig, func(c *Config) { c.Advertise = "" }, `advertise "" must be "auto", an IP address or a DNS name`},
		{"auth with node defaults", authConfig, func(c *Config) { c.Name, c.Advertise = DefaultName, DefaultAdvertise }, "apply to the node role only"},
		{"negative conns", nodeConfig, func(c *Config) { c.MaxConns = -1 }, "max_conns must not be negative"},
		{"negative drain deadline", nodeConfig, func(c *Config) { c.DrainDeadline = -time.Second }, "drain deadline must be whole seconds"},
		{"drain deadline past EC2's shutdown", nodeConfig, func(c *Config) { c.DrainDeadline = 2 * time.Minute }, "drain deadline must be whole seconds"},
		{"fractional drain deadline", nodeConfig, func(c *Config) { c.DrainDeadline = 1500 * time.Millisecond }, "drain deadline must be whole seconds"},
		{"auth with drain deadline", authConfig, func(c *Config) { c.DrainDeadline = time.Second }, "apply to the node role only"},
		{"negative drain rate", nodeConfig, func(c *Config) { c.DrainRate = -1 }, "drain rate must not be negative"},
		{"auth with drain rate", authConfig, func(c *Config) { c.DrainRate = 100 }, "apply to the node role only"},
		{"no auth keys", nodeConfig, func(c *Config) { c.AuthPublicKeys = "" }, "a node needs the auth public keys"},
		{"both auth keys", nodeConfig, func(c *Config) { c.AuthPublicKeysParameter = "/k" }, "not both"},
		{"bad auth keys parameter", nodeConfig, func(c *Config) { c.AuthPublicKeys, c.AuthPublicKeysParameter = "", "k/x" }, "auth public keys parameter:"},
		{"bad auth keys", nodeConfig, func(c *Config) { c.AuthPublicKeys = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" }, "auth public keys:"},
		{"http upstream", nodeConfig, func(c *Config) { c.Upstream = "http://x:1/" }, "must use scheme ws or wss"},
		{"node with signing key", nodeConfig, func(c *Config) { c.SigningKeyParameter = "/x" }, "apply to the auth role only"},
		{"auth without key", authConfig, func(c *Config) { c.SigningKeyParameter = "" }, "signing key parameter is required"},
		{"auth without users", authConfig, func(c *Config) { c.UsersParameter = "" }, "users parameter is required"},
		{"auth with max conns", authConfig, func(c *Config) { c.MaxConns = 5 }, "apply to the node role only"},
		{"auth with public keys", authConfig, func(c *Config) { c.AuthPublicKeysParameter = "/k" }, "apply to the node role only"},
		{"too big", nodeConfig, func(c *Config) { c.AuthPublicKeys = strings.Repeat(c.AuthPublicKeys, 150) }, "EC2 accepts at most 16384"},
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
	// reset cuts a connection as a peer that crashes does: an RST before any response, which
	// curl's --retry does not retry (curl exit 56).
	reset := func(w http.ResponseWriter) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	var resetOnce atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/wsdirect-node":
			_, _ = w.Write(payload)
		case "/reset-once/wsdirect-node":
			if resetOnce.CompareAndSwap(false, true) {
				reset(w)
				return
			}
			_, _ = w.Write(payload)
		case "/reset-always/wsdirect-node":
			reset(w)
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
		wantOut         string // in the script's output
	}{
		{"raw binary, no checksum", "/wsdirect-node", "", true, ""},
		{"raw binary, checksum", "/wsdirect-node", sum(payload), true, ""},
		{"tarball, checksum", "/wsdirect-node_1.0.0_linux_amd64.tar.gz", sum(tgz.Bytes()), true, ""},
		{"wrong checksum", "/wsdirect-node", sum([]byte("other")), false, "does not match"},
		// An HTTP error is final: one try.
		{"not found", "/missing", "", false, "(curl exit 22, attempt 1 of 3)"},
		// A reset connection is tried again, by the script since curl does not.
		{"connection reset once", "/reset-once/wsdirect-node", sum(payload), true, "(curl exit 56, attempt 1 of 3); trying again"},
		{"connection reset every time", "/reset-always/wsdirect-node", "", false, "(curl exit 56, attempt 3 of 3)"},
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
			if tc.wantOut != "" && !strings.Contains(string(outb), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, outb)
			}
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
	c.DrainRate = 60
	out, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := parse(t, out)
	unit := content(t, p, "/etc/systemd/system/wsdirect-node.service")
	for _, w := range []string{" -drain-deadline 45s -drain-rate 60 ", "TimeoutStopSec=75s\n"} {
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
