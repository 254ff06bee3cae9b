// Package userdata renders cloud-init user data (#cloud-config) that turns a
// fresh EC2 instance into a wsdirect node or auth host: it installs the
// wsdirect-node or wsdirect-auth binary from a release URL (optionally
// checking its SHA-256), writes a systemd unit with the right flags and
// starts it.
//
// User data holds no secret. Anything on the instance can read it from
// instance metadata, and so can anyone allowed ec2:DescribeInstanceAttribute.
// The secrets (gossip key, signing key, users file, admin token) stay in
// AWS Systems Manager Parameter Store as SecureString parameters; user data
// holds only their names, which the binaries read at start and on SIGHUP
// with the instance role (ssm:///name references, package internal/secret).
// The auth service's public keys are not secret: they may be written into
// user data or read from a parameter too.
//
// The provider function provider::wsdirect::cloudinit and the
// wsdirect_cloudinit data source both call Render, so the modules and users
// of the function get byte-identical user data.
package userdata

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/secret"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// Roles accepted in Config.Role.
const (
	RoleNode = "node"
	RoleAuth = "auth"
)

// TLS modes accepted in Config.TLS (the binaries' -tls).
const (
	// TLSACME: the service obtains and renews its own certificate from an
	// ACME CA (Let's Encrypt by default): an IP certificate for a node's
	// public address, or the names in TLSNames.
	TLSACME = "acme"
	// TLSFiles: a certificate and key already on the instance (baked into
	// the AMI, or fetched at boot by your own tooling); never in user data.
	TLSFiles = "files"
	// TLSOffload: plain listener, TLS terminated in front; clients still
	// use wss:// and https://.
	TLSOffload = "offload"
	// TLSOff: plain ws:// and http://; only with a loopback bind.
	TLSOff = "off"
)

// The values DefaultConfig and DefaultConfigTLS set. The provider documents
// them as the defaults of its optional settings.
const (
	// DefaultTLS: every listener that leaves the host speaks TLS, with a
	// certificate the service gets itself, so nothing has to be copied to
	// the instance.
	DefaultTLS = TLSACME
	// DefaultTLSBind is the HTTPS port on every interface, for a service
	// that terminates TLS itself (TLSACME, TLSFiles), node and auth alike.
	DefaultTLSBind = "0.0.0.0:443"
	// DefaultNodeBind and DefaultAuthBind listen on every interface, on
	// the ports wsdirect-node and wsdirect-auth use by default; they are
	// the plain listeners of TLSOffload.
	DefaultNodeBind = "0.0.0.0:8080"
	DefaultAuthBind = "0.0.0.0:8443"
	// DefaultGossipBind is serf's customary LAN port on every interface.
	DefaultGossipBind = "0.0.0.0:7946"
	// DefaultAdvertise sends clients to the instance's public IPv4, read
	// from IMDSv2 at start-up, so one user data serves every node.
	DefaultAdvertise = "auto"
	// DefaultName is systemd's %H specifier: the instance's host name,
	// unique within a VPC, so one user data serves every node.
	DefaultName = "%H"
	// AuthName is the auth member name: the binary's own default
	// (auth-<host name>), spelled out with systemd's %H so the unit, not
	// the binary's view of the kernel host name, decides it.
	AuthName = "auth-%H"
)

// DefaultDrainDeadline is wsdirect-node's -drain-deadline default
// (node.DefaultConfig; a test keeps the two equal).
const DefaultDrainDeadline = 30 * time.Second

// StopMargin is what a node's unit allows for the rest of a stop after the
// drain deadline: leaving the gossip (bounded at 10 s in wsdirect-node) and
// closing what is left, with room to spare. The whole stop, 60 s by
// default, fits systemd's default of 90 s, EC2's clean shutdown (which
// waits for the units; the instance lingers in shutting-down for a few
// minutes at most) and a Spot instance's two-minute notice
// (docs/design.md section 15).
const StopMargin = 30 * time.Second

// MaxDrainDeadline bounds DrainDeadline, so that a stop stays within
// EC2's shutdown and Spot's notice.
const MaxDrainDeadline = 90 * time.Second

// tlsNamesAuto is the binaries' -tls-names value for the instance's public
// IPv4 address (tlscert.NamesAuto).
const tlsNamesAuto = "auto"

// MaxUserData is EC2's limit on raw user data.
const MaxUserData = 16 * 1024

// Where the rendered user data puts things on the instance.
const (
	ConfigDir    = "/etc/wsdirect"
	BinDir       = "/usr/local/bin"
	LibDir       = "/usr/local/lib/wsdirect"
	UnitDir      = "/etc/systemd/system"
	ServiceUser  = "wsdirect"
	AuthKeysFile = ConfigDir + "/auth-keys.pem"
	// DefaultTLSCertFile and DefaultTLSKeyFile are where TLSFiles looks
	// for the certificate and key unless told otherwise.
	DefaultTLSCertFile = ConfigDir + "/tls/cert.pem"
	DefaultTLSKeyFile  = ConfigDir + "/tls/key.pem"
	ACMECARootFile     = ConfigDir + "/acme-ca-root.pem"
	// StateDir is the unit's StateDirectory; ACME keeps its certificates,
	// keys and account under it, so a restart does not order again.
	StateDir    = "/var/lib/wsdirect"
	ACMEStorage = StateDir + "/acme"
)

// Config describes the user data for one role. Start from DefaultConfig;
// Render rejects invalid fields. Secrets are named by their Parameter Store
// parameters (SecureString, "/wsdirect/prod/gossip-key"); the rendered text
// holds those names and no secret.
type Config struct {
	// Role is RoleNode or RoleAuth.
	Role string
	// ReleaseURL is an http(s) URL of the wsdirect-node/wsdirect-auth
	// binary, or of a .tar.gz/.tgz release archive holding it at its root
	// (as goreleaser builds them).
	ReleaseURL string
	// SHA256 is the hex SHA-256 of the file at ReleaseURL; when set the
	// download is verified before it is installed, when empty it is not.
	SHA256 string
	// GossipKeyParameter names the parameter holding the base64 gossip
	// key (or keys, during a rotation). Required.
	GossipKeyParameter string
	// JoinTag is "Key=Value": members find each other by listing running
	// instances with this tag (-join-ec2-tag). Required.
	JoinTag string
	// GossipBind is the serf listen address, "ip:port". Required.
	GossipBind string
	// Bind is the service's listen address, "ip:port". Required.
	Bind string

	// Node only.

	// Name is the node's member name, or DefaultName (the host name).
	// Required for nodes.
	Name string
	// Advertise is the public address clients are sent to, or "auto" for
	// the instance's public IPv4 from IMDSv2. Required for nodes.
	Advertise string
	// MaxConns caps WebSocket connections on the node; 0 keeps the
	// binary's default.
	MaxConns int
	// AuthPublicKeys holds one or more Ed25519 "PUBLIC KEY" PEM blocks the
	// node accepts connection tokens from, written into user data (they
	// are not secret). A node needs exactly one of AuthPublicKeys and
	// AuthPublicKeysParameter.
	AuthPublicKeys string
	// AuthPublicKeysParameter names a parameter (String or SecureString)
	// holding those PEM blocks. Unlike AuthPublicKeys it lets a signing
	// key rotate without new user data: change the parameter and SIGHUP.
	AuthPublicKeysParameter string
	// Upstream, when set, is a ws:// or wss:// URL the node relays every
	// client connection to; empty means the built-in echo.
	Upstream string
	// DrainDeadline is the node's -drain-deadline: how long the drain on
	// SIGTERM (a stop, a terminate, a scale-in) may take before the rest of
	// the clients are cut. 0 keeps the binary's default,
	// DefaultDrainDeadline. The unit's TimeoutStopSec is this plus
	// StopMargin.
	DrainDeadline time.Duration
	// DrainRate is the node's -drain-rate: clients a drain closes per
	// second. 0 keeps the binary's default (5,000 a second, in batches of
	// 500). Lower it where every node drains at once (a rolling
	// replacement) onto an auth service that takes fewer: the clients then
	// wait on their old node rather than disconnected.
	DrainRate int

	// Both roles, optional.

	// AdminTokenParameter names the parameter holding the bearer token of
	// the admin API (a node's POST /admin/drain, the auth service's GET
	// /v1/nodes). Empty: the API is off.
	AdminTokenParameter string

	// Auth only.

	// SigningKeyParameter names the parameter holding the Ed25519 PKCS#8
	// "PRIVATE KEY" PEM that signs connection tokens. Required.
	SigningKeyParameter string
	// UsersParameter names the parameter holding the bcrypt users file.
	// Required: wsdirect-auth needs exactly one credential backend, and the
	// users file is the one user data configures. A parameter holds at most
	// 4 KB (8 KB in the Advanced tier), about 60 (120) users; more belong
	// behind -auth-callback or -jwks-url.
	UsersParameter string

	// Both roles: TLS.

	// TLS is TLSACME (DefaultTLS), TLSFiles, TLSOffload or TLSOff.
	// Required.
	TLS string
	// TLSNames are the DNS names and IP addresses the certificate is for
	// (-tls-names). Empty on a node means its advertised address (an IP
	// certificate with advertise "auto"); empty on an auth host with
	// TLSACME means an IP certificate for its public IPv4 address, read
	// from instance metadata (-tls-names auto): clients then reach auth by
	// that address.
	TLSNames []string
	// TLSCertFile and TLSKeyFile are PEM files on the instance; required
	// with TLSFiles (DefaultConfigTLS sets DefaultTLSCertFile and
	// DefaultTLSKeyFile), empty otherwise. The key never travels in user
	// data.
	TLSCertFile, TLSKeyFile string
	// TLSKeyParameter (TLSFiles) names the SecureString parameter holding
	// the PEM key, read by the binary (-tls-key ssm:///name) instead of
	// TLSKeyFile, which must then be empty: the certificate is public and
	// may sit in the AMI, the key stays in Parameter Store.
	TLSKeyParameter string
	// ACMEEmail, ACMEDirectory and ACMEProfile are the ACME account's
	// contact, the CA's directory URL and the profile. Empty keeps the
	// binary's default: no contact, Let's Encrypt production, shortlived
	// for IP certificates and the CA's default for names.
	ACMEEmail, ACMEDirectory, ACMEProfile string
	// ACMECARoot is the PEM of an extra root CA to trust for the ACME
	// directory (a private CA); empty trusts the system roots only. Public,
	// so it may travel in user data.
	ACMECARoot string
	// AdvertisePort (node) is the port clients dial when it is not the
	// bind port, e.g. 443 on a TLS terminator in front (TLSOffload); 0
	// means the bind port.
	AdvertisePort int
}

// DefaultConfig returns the defaults for role (RoleNode or RoleAuth), with
// DefaultTLS; the caller sets the release, the parameter names, the join
// tag and, for a node, its auth public keys. Fields that apply to the other
// role are left empty.
func DefaultConfig(role string) Config { return DefaultConfigTLS(role, DefaultTLS) }

// DefaultConfigTLS is DefaultConfig for TLS mode tls, whose defaults
// differ: a service that terminates TLS itself binds DefaultTLSBind, the
// others the role's plain port; TLSFiles reads DefaultTLSCertFile and
// DefaultTLSKeyFile. Render still rejects a mode that is not one of the
// TLS constants.
func DefaultConfigTLS(role, tls string) Config {
	c := Config{Role: role, GossipBind: DefaultGossipBind, TLS: tls}
	switch role {
	case RoleNode:
		c.Bind, c.Name, c.Advertise = DefaultNodeBind, DefaultName, DefaultAdvertise
	case RoleAuth:
		c.Bind = DefaultAuthBind
	}
	if c.servesTLS() {
		c.Bind = DefaultTLSBind
	}
	if tls == TLSFiles {
		c.TLSCertFile, c.TLSKeyFile = DefaultTLSCertFile, DefaultTLSKeyFile
	}
	return c
}

var (
	tagKeyPattern = regexp.MustCompile(`^[A-Za-z0-9 _.:/=+@-]{1,128}$`)
	tagValPattern = regexp.MustCompile(`^[A-Za-z0-9 _.:/=+@-]{0,256}$`)
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	hexPattern    = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	// dnsPattern is a DNS name; a label may be systemd's %H (the host
	// name) or %l (the short host name), so one user data names every node.
	dnsPattern     = regexp.MustCompile(`^(%H|%l|\*|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.(%H|%l|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?))+$`)
	pathPattern    = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)
	emailPattern   = regexp.MustCompile(`^[^\s@'"$\\]+@[^\s@'"$\\]+$`)
	profilePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

func (c Config) binary() string { return "wsdirect-" + c.Role }

// servesTLS reports whether the service terminates TLS itself.
func (c Config) servesTLS() bool { return c.TLS == TLSACME || c.TLS == TLSFiles }

// Validate reports every problem with c, joined into one error.
func (c Config) Validate() error {
	_, err := c.normalize()
	return err
}

func (c Config) normalize() (Config, error) {
	n := c
	n.SHA256 = strings.ToLower(n.SHA256)
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if n.Role != RoleNode && n.Role != RoleAuth {
		add("role %q is not supported; use %q or %q", n.Role, RoleNode, RoleAuth)
	}
	if err := checkURL(n.ReleaseURL, "http", "https"); err != nil {
		add("release URL: %v", err)
	}
	if n.SHA256 != "" && !hexPattern.MatchString(n.SHA256) {
		add("sha256 must be 64 hex digits")
	}
	checkParam := func(what, name string, required bool) {
		switch {
		case name == "" && required:
			add("%s parameter is required (an SSM Parameter Store name such as /wsdirect/prod/%s)", what, strings.ReplaceAll(what, " ", "-"))
		case name == "":
		case strings.HasPrefix(name, secret.Scheme):
			add("%s parameter %q: give the parameter name without %s", what, name, secret.Scheme)
		default:
			if err := secret.CheckParameterName(name); err != nil {
				add("%s parameter: %v", what, err)
			}
		}
	}
	checkParam("gossip key", n.GossipKeyParameter, true)
	checkParam("admin token", n.AdminTokenParameter, false)
	if k, v, ok := strings.Cut(n.JoinTag, "="); !ok || !tagKeyPattern.MatchString(k) || !tagValPattern.MatchString(v) {
		add("join tag %q must be \"Key=Value\" with an EC2 tag key (1-128 characters) and value (0-256 characters)", n.JoinTag)
	} else if strings.HasPrefix(strings.ToLower(k), "aws:") {
		add("join tag key %q uses the reserved aws: prefix", k)
	}
	checkHostPort := func(what, s string) {
		host, port, err := net.SplitHostPort(s)
		if err != nil || (host != "" && net.ParseIP(host) == nil) {
			add("%s %q must be \"ip:port\", e.g. \"0.0.0.0:8080\"", what, s)
			return
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			add("%s %q: port must be in 1-65535", what, s)
		}
	}
	checkHostPort("bind", n.Bind)
	checkHostPort("gossip bind", n.GossipBind)

	switch n.Role {
	case RoleNode:
		if n.Name != DefaultName && !namePattern.MatchString(n.Name) {
			add("name %q must start with a letter or digit and contain only letters, digits, '_', '-' or '.'", n.Name)
		}
		if n.Advertise != "auto" && net.ParseIP(n.Advertise) == nil && !dnsPattern.MatchString(n.Advertise) {
			add("advertise %q must be \"auto\", an IP address or a DNS name (a label may be %%H or %%l, the host name)", n.Advertise)
		}
		if n.AdvertisePort < 0 || n.AdvertisePort > 65535 {
			add("advertise port %d is out of range 1-65535", n.AdvertisePort)
		}
		if n.MaxConns < 0 {
			add("max_conns must not be negative, got %d", n.MaxConns)
		}
		if n.DrainDeadline < 0 || n.DrainDeadline > MaxDrainDeadline || n.DrainDeadline%time.Second != 0 {
			add("drain deadline must be whole seconds from 0 (the binary's default, %s) to %s, got %s", DefaultDrainDeadline, MaxDrainDeadline, n.DrainDeadline)
		}
		if n.DrainRate < 0 {
			add("drain rate must not be negative (0: the binary's default), got %d", n.DrainRate)
		}
		switch {
		case n.AuthPublicKeys == "" && n.AuthPublicKeysParameter == "":
			add("a node needs the auth public keys: PEM \"PUBLIC KEY\" blocks of the auth signing keys, or the parameter holding them")
		case n.AuthPublicKeys != "" && n.AuthPublicKeysParameter != "":
			add("give the auth public keys or their parameter, not both")
		case n.AuthPublicKeys != "":
			if _, err := token.ParsePublicKeys([]byte(n.AuthPublicKeys)); err != nil {
				add("auth public keys: %v", err)
			}
		default:
			checkParam("auth public keys", n.AuthPublicKeysParameter, true)
		}
		if n.Upstream != "" {
			if err := checkURL(n.Upstream, "ws", "wss"); err != nil {
				add("upstream: %v", err)
			}
		}
		if n.SigningKeyParameter != "" || n.UsersParameter != "" {
			add("the signing key and users parameters apply to the auth role only")
		}
	case RoleAuth:
		checkParam("signing key", n.SigningKeyParameter, true)
		checkParam("users", n.UsersParameter, true)
		if c.Name != "" || c.Advertise != "" || n.MaxConns != 0 || n.AuthPublicKeys != "" || n.AuthPublicKeysParameter != "" || n.Upstream != "" || n.AdvertisePort != 0 || n.DrainDeadline != 0 || n.DrainRate != 0 {
			add("name, advertise, advertise port, max_conns, auth public keys, upstream, drain deadline and drain rate apply to the node role only")
		}
	}
	n.checkTLS(add, checkParam)
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return n, nil
}

// checkTLS validates the TLS settings.
func (n Config) checkTLS(add func(string, ...any), checkParam func(what, name string, required bool)) {
	switch n.TLS {
	case TLSACME, TLSFiles, TLSOffload:
	case TLSOff:
		host, _, _ := net.SplitHostPort(n.Bind)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			add("tls \"off\" needs a loopback bind, got %q: the binaries refuse plain text on other addresses (use acme, files, or offload when TLS is terminated in front)", n.Bind)
		}
	default:
		add("tls %q is not supported; use %q, %q, %q or %q", n.TLS, TLSACME, TLSFiles, TLSOffload, TLSOff)
	}
	for _, name := range n.TLSNames {
		if net.ParseIP(name) == nil && !dnsPattern.MatchString(name) {
			add("tls name %q is neither an IP address nor a DNS name", name)
		}
	}
	if n.TLS == TLSFiles {
		files := map[string]string{"tls cert file": n.TLSCertFile}
		switch {
		case n.TLSKeyParameter == "":
			files["tls key file"] = n.TLSKeyFile
		case n.TLSKeyFile != "":
			add("give the tls key file or its parameter, not both")
		default:
			checkParam("tls key", n.TLSKeyParameter, true)
		}
		for what, p := range files {
			if !pathPattern.MatchString(p) {
				add("%s %q must be an absolute path of letters, digits, '.', '_', '-' and '/'", what, p)
			}
		}
	} else if n.TLSCertFile != "" || n.TLSKeyFile != "" || n.TLSKeyParameter != "" {
		add("tls cert and key files (and the key parameter) apply to tls \"files\" only")
	}
	if n.TLS != TLSACME {
		if n.ACMEEmail != "" || n.ACMEDirectory != "" || n.ACMEProfile != "" || n.ACMECARoot != "" {
			add("acme email, directory, profile and CA root apply to tls \"acme\" only")
		}
		return
	}
	if n.ACMEEmail != "" && !emailPattern.MatchString(n.ACMEEmail) {
		add("acme email %q is not an e-mail address", n.ACMEEmail)
	}
	if n.ACMEDirectory != "" {
		if err := checkURL(n.ACMEDirectory, "https"); err != nil {
			add("acme directory: %v", err)
		}
	}
	if n.ACMEProfile != "" && !profilePattern.MatchString(n.ACMEProfile) {
		add("acme profile %q must be letters, digits, '.', '_' or '-'", n.ACMEProfile)
	}
	if n.ACMECARoot != "" {
		if _, err := x509.ParseCertificate(pemBlock(n.ACMECARoot)); err != nil {
			add("acme CA root must be a PEM CERTIFICATE: %v", err)
		}
	}
}

// pemBlock returns the DER of the first PEM block in s, or nil.
func pemBlock(s string) []byte {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil
	}
	return b.Bytes
}

func checkURL(s string, schemes ...string) error {
	if s == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	ok := false
	for _, sc := range schemes {
		ok = ok || u.Scheme == sc
	}
	if !ok {
		return fmt.Errorf("%q must use scheme %s", s, strings.Join(schemes, " or "))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if strings.ContainsAny(s, " \t\r\n'\"\\`$") {
		return fmt.Errorf("%q must not contain whitespace, quotes, backslashes, '`' or '$'", s)
	}
	return nil
}

// cloudConfig is the subset of cloud-init's schema we emit; field order
// fixes the output order.
type cloudConfig struct {
	WriteFiles []writeFile `yaml:"write_files"`
	RunCmd     [][]string  `yaml:"runcmd"`
}

type writeFile struct {
	Path        string `yaml:"path"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
	Content     string `yaml:"content"`
}

// Render validates c and returns #cloud-config user data. The output is
// deterministic and at most MaxUserData bytes.
func Render(c Config) (string, error) {
	n, err := c.normalize()
	if err != nil {
		return "", err
	}
	bin := n.binary()
	unit := bin + ".service"
	installer := LibDir + "/install-" + bin + ".sh"

	var files []writeFile
	args := []string{BinDir + "/" + bin}
	switch n.Role {
	case RoleNode:
		authKeys := secret.ParameterRef(n.AuthPublicKeysParameter)
		if n.AuthPublicKeys != "" {
			files = append(files, writeFile{Path: AuthKeysFile, Owner: "root:root", Permissions: "0644", Content: ensureNewline(n.AuthPublicKeys)})
			authKeys = AuthKeysFile
		}
		args = append(args,
			"-name", n.Name,
			"-bind", n.Bind,
			"-advertise", n.Advertise,
		)
		if n.AdvertisePort > 0 {
			args = append(args, "-advertise-port", strconv.Itoa(n.AdvertisePort))
		}
		args = append(args,
			"-gossip-bind", n.GossipBind,
			"-gossip-key-file", secret.ParameterRef(n.GossipKeyParameter),
			"-join-ec2-tag", n.JoinTag,
			"-auth-keys", authKeys,
		)
		if n.MaxConns > 0 {
			args = append(args, "-max-conns", strconv.Itoa(n.MaxConns))
		}
		if n.Upstream != "" {
			args = append(args, "-upstream", n.Upstream)
		}
		if n.DrainDeadline > 0 {
			args = append(args, "-drain-deadline", n.DrainDeadline.String())
		}
		if n.DrainRate > 0 {
			args = append(args, "-drain-rate", strconv.Itoa(n.DrainRate))
		}
	case RoleAuth:
		args = append(args,
			"-name", AuthName,
			"-bind", n.Bind,
			"-gossip-bind", n.GossipBind,
			"-gossip-key-file", secret.ParameterRef(n.GossipKeyParameter),
			"-join-ec2-tag", n.JoinTag,
			"-signing-key", secret.ParameterRef(n.SigningKeyParameter),
			"-users", secret.ParameterRef(n.UsersParameter),
		)
	}
	if n.AdminTokenParameter != "" {
		args = append(args, "-admin-token-file", secret.ParameterRef(n.AdminTokenParameter))
	}
	args = append(args, "-tls", n.TLS)
	switch {
	case len(n.TLSNames) > 0:
		args = append(args, "-tls-names", strings.Join(n.TLSNames, ","))
	case n.Role == RoleAuth && n.TLS == TLSACME:
		// No name: an IP certificate for the host's public address, as a
		// node's (whose names default to its advertised address).
		args = append(args, "-tls-names", tlsNamesAuto)
	}
	switch n.TLS {
	case TLSFiles:
		key := n.TLSKeyFile
		if n.TLSKeyParameter != "" {
			key = secret.ParameterRef(n.TLSKeyParameter)
		}
		args = append(args, "-tls-cert", n.TLSCertFile, "-tls-key", key)
	case TLSACME:
		// The http-01 listener on the service's own address: spelled out,
		// so that it binds what -bind binds (the binary's default is every
		// interface).
		host, _, _ := net.SplitHostPort(n.Bind)
		args = append(args, "-acme-http-bind", net.JoinHostPort(host, "80"), "-acme-storage", ACMEStorage)
		if n.ACMEDirectory != "" {
			args = append(args, "-acme-directory", n.ACMEDirectory)
		}
		if n.ACMEEmail != "" {
			args = append(args, "-acme-email", n.ACMEEmail)
		}
		if n.ACMEProfile != "" {
			args = append(args, "-acme-profile", n.ACMEProfile)
		}
		if n.ACMECARoot != "" {
			files = append(files, writeFile{Path: ACMECARootFile, Owner: "root:root", Permissions: "0644", Content: ensureNewline(n.ACMECARoot)})
			args = append(args, "-acme-ca-root", ACMECARootFile)
		}
	}
	files = append(files,
		writeFile{Path: UnitDir + "/" + unit, Owner: "root:root", Permissions: "0644", Content: systemdUnit(n, args)},
		writeFile{Path: installer, Owner: "root:root", Permissions: "0755", Content: installScript(n)},
	)

	doc := cloudConfig{
		WriteFiles: files,
		RunCmd: [][]string{
			{installer},
			{"systemctl", "daemon-reload"},
			{"systemctl", "enable", "--now", unit},
		},
	}
	var buf bytes.Buffer
	buf.WriteString("#cloud-config\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return "", fmt.Errorf("encoding cloud-config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	if buf.Len() > MaxUserData {
		return "", fmt.Errorf("rendered user data is %d bytes; EC2 accepts at most %d (put the auth public keys in a parameter)", buf.Len(), MaxUserData)
	}
	return buf.String(), nil
}

func ensureNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// systemdUnit renders the service. It runs as an unprivileged system user
// that the install script creates. It is restarted without limit: at boot
// the secrets may not be readable yet (a parameter created after the
// instance, an instance role still propagating), and the service should
// come up by itself once they are.
func systemdUnit(c Config, args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		// Only the host name specifiers, and only where a name is expected:
		// a node's name, advertised name and certificate names, an auth
		// host's certificate names and its AuthName.
		prev := ""
		if i > 0 {
			prev = args[i-1]
		}
		hostSpec := prev == "-tls-names" ||
			c.Role == RoleNode && (prev == "-name" || prev == "-advertise") ||
			c.Role == RoleAuth && prev == "-name" && a == AuthName
		quoted[i] = systemdArg(a, hostSpec)
	}
	var extra strings.Builder
	if c.TLS == TLSACME || lowPort(c.Bind) {
		// Ports 80 (the http-01 challenge) and 443 without running as root.
		extra.WriteString("AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n")
	}
	if c.TLS == TLSACME {
		// Owned by the service user, kept across restarts and reboots.
		fmt.Fprintf(&extra, "StateDirectory=%s\nStateDirectoryMode=0700\n", strings.TrimPrefix(StateDir, "/var/lib/"))
	}
	desc := "wsdirect node (WebSocket server)"
	stop := ""
	if c.Role == RoleAuth {
		desc = "wsdirect auth service"
	} else {
		drain := c.DrainDeadline
		if drain == 0 {
			drain = DefaultDrainDeadline
		}
		stop = fmt.Sprintf(`# SIGTERM drains the node within -drain-deadline (%s): its clients are told,
# in batches, to reconnect through auth. The rest of the stop fits in %s more.
TimeoutStopSec=%ds
`, drain, StopMargin, int((drain + StopMargin).Seconds()))
	}
	return fmt.Sprintf(`[Unit]
Description=%s
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=0

[Service]
Type=simple
User=%s
Group=%s
# Written by the install script: AWS_REGION from IMDS, for Parameter Store
# and -join-ec2-tag.
EnvironmentFile=-%s/%s.env
ExecStart=%s
Restart=on-failure
# Every start reads the secrets from Parameter Store; a fleet failing
# together must not exceed its throughput.
RestartSec=5s
%s# Every WebSocket holds a file descriptor.
LimitNOFILE=1048576
NoNewPrivileges=true
ProtectSystem=full
ProtectHome=true
PrivateTmp=true
%s
[Install]
WantedBy=multi-user.target
`, desc, ServiceUser, ServiceUser, ConfigDir, c.binary(), strings.Join(quoted, " "), stop, extra.String())
}

// lowPort reports whether hostport's port is below 1024.
func lowPort(hostport string) bool {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n < 1024
}

// systemdArg quotes one ExecStart argument. Specifiers ('%') are escaped,
// except %H and %l (the host name, long and short) where hostSpec says the
// argument may carry them, and so are '$' references.
func systemdArg(a string, hostSpec bool) string {
	a = strings.ReplaceAll(a, "%", "%%")
	if hostSpec {
		a = strings.NewReplacer("%%H", "%H", "%%l", "%l").Replace(a)
	}
	a = strings.ReplaceAll(a, "$", "$$")
	if a != "" && !strings.ContainsAny(a, " \t\"'\\;") {
		return a
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(a) + `"`
}

// shellQuote single-quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// installScript downloads, verifies and installs the binary, creates the
// service user and hands it the configuration directory, and records the
// region. DESTDIR
// lets tests run it against a scratch root; with DESTDIR set it skips the
// steps that need root or EC2 (user, ownership, IMDS).
//
// The download is tried up to 3 times, 3 s apart, each try being curl with
// its own retries: curl's --retry covers timeouts, refused connections and
// HTTP 408, 429 and 5xx, but not a connection reset, a transfer cut short or
// an empty reply, and --retry-all-errors is missing from curl before 7.71
// (Ubuntu 20.04, RHEL 8), which would fail on the unknown option. An HTTP
// error left after curl's retries (curl exit 22: a 404, a 403) is final.
// Every try is bounded (10 s to connect, 300 s a transfer, no retry of
// curl's own started after 120 s): a try ends within about 7 minutes and
// the download within about 22.
func installScript(c Config) string {
	bin := c.binary()
	return fmt.Sprintf(`#!/bin/sh
# Installs %[1]s. Written by wsdirect user data; safe to re-run.
set -eu
DESTDIR="${DESTDIR:-}"
name=%[1]s
url=%[2]s
sha256=%[3]s
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --retry skips a reset (curl exit 56), a cut transfer (18), an empty reply (52), and
# --retry-all-errors needs curl 7.71: 3 attempts; an HTTP error (22) is final.
attempt=1
until curl -fsSL --connect-timeout 10 --max-time 300 --retry 10 --retry-delay 3 --retry-max-time 120 --retry-connrefused -o "$tmp/download" "$url"; do
  rc=$?
  if [ "$rc" -eq 22 ] || [ "$attempt" -ge 3 ]; then
    echo "$name: downloading $url failed (curl exit $rc, attempt $attempt of 3)" >&2
    exit 1
  fi
  echo "$name: downloading $url failed (curl exit $rc, attempt $attempt of 3); trying again in 3s" >&2
  attempt=$((attempt + 1))
  sleep 3
done
if [ -n "$sha256" ]; then
  if ! echo "$sha256  $tmp/download" | sha256sum -c - >/dev/null 2>&1; then
    echo "$name: SHA-256 of $url does not match $sha256" >&2
    exit 1
  fi
fi
case "$url" in
  *.tar.gz|*.tgz)
    tar -xzf "$tmp/download" -C "$tmp" "$name"
    src="$tmp/$name" ;;
  *)
    src="$tmp/download" ;;
esac
mkdir -p "$DESTDIR%[4]s"
install -m 0755 "$src" "$DESTDIR%[4]s/$name"

if [ -z "$DESTDIR" ]; then
  id -u %[5]s >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin %[5]s
  # User data may write nothing here (the secrets are parameters).
  mkdir -p %[6]s
  chgrp -R %[5]s %[6]s
  chmod 0750 %[6]s
  # Parameter Store and -join-ec2-tag (DescribeInstances) need the region.
  if itok=$(curl -fsS -m 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" http://169.254.169.254/latest/api/token) &&
     region=$(curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $itok" http://169.254.169.254/latest/meta-data/placement/region); then
    echo "AWS_REGION=$region" > %[6]s/$name.env
  fi
fi
`, bin, shellQuote(c.ReleaseURL), shellQuote(c.SHA256), BinDir, ServiceUser, ConfigDir)
}
