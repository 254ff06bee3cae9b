package haproxycfg

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Modes accepted in Config.Mode.
const (
	// ModeHTTP proxies WebSocket upgrades as HTTP: HAProxy sees the request,
	// adds X-Forwarded-For and health-checks nodes over HTTP.
	ModeHTTP = "http"
	// ModeTCP proxies raw TCP, like an AWS NLB does; health checks are plain
	// TCP connects.
	ModeTCP = "tcp"
)

// The values DefaultConfig sets. The provider documents them as the
// defaults of its optional settings.
const (
	// DefaultBind is the HTTP port on every IPv4 address.
	DefaultBind = "*:80"
	// DefaultMode is the article's setup: HAProxy sees the upgrade, adds
	// X-Forwarded-For and checks the nodes over HTTP.
	DefaultMode = ModeHTTP
	// DefaultBalance spreads long-lived WebSockets by open connections,
	// not by requests.
	DefaultBalance = "leastconn"
	// DefaultMaxConn has room for ten nodes at node.DefaultConfig's cap
	// of 10,000; HAProxy then needs a descriptor limit of about
	// 2 × DefaultMaxConn.
	DefaultMaxConn = 100000
	// DefaultHealthCheckPath is wsdirect-node's liveness endpoint.
	DefaultHealthCheckPath = "/healthz"
	// A node that stops answering leaves rotation after Fall × Interval =
	// 6 s and comes back Rise × Interval = 4 s after it recovers.
	DefaultHealthCheckInterval = 2 * time.Second
	DefaultHealthCheckFall     = 3
	DefaultHealthCheckRise     = 2
	// DefaultTimeoutConnect is far above a round trip inside a VPC and
	// covers a lost SYN.
	DefaultTimeoutConnect = 5 * time.Second
	// DefaultTimeoutClient and DefaultTimeoutServer bound the HTTP phase
	// before the upgrade.
	DefaultTimeoutClient = 30 * time.Second
	DefaultTimeoutServer = 30 * time.Second
	// DefaultTimeoutTunnel must exceed the node's ping interval (30 s by
	// default); an hour only reaps tunnels whose ends both went silent.
	DefaultTimeoutTunnel = time.Hour
	// DefaultTimeoutClientFin keeps clients that vanished after their FIN
	// from pinning a tunnel for an hour.
	DefaultTimeoutClientFin = 30 * time.Second
	// DefaultBackendPort is the port wsdirect-node serves WebSockets on.
	DefaultBackendPort = 8080
)

// DefaultConfig returns a production-shaped configuration; the caller sets
// Backends (and usually SourceIPs).
func DefaultConfig() Config {
	return Config{
		Bind:                DefaultBind,
		Mode:                DefaultMode,
		Balance:             DefaultBalance,
		MaxConn:             DefaultMaxConn,
		HealthCheckPath:     DefaultHealthCheckPath,
		HealthCheckInterval: DefaultHealthCheckInterval,
		HealthCheckFall:     DefaultHealthCheckFall,
		HealthCheckRise:     DefaultHealthCheckRise,
		TimeoutConnect:      DefaultTimeoutConnect,
		TimeoutClient:       DefaultTimeoutClient,
		TimeoutServer:       DefaultTimeoutServer,
		TimeoutTunnel:       DefaultTimeoutTunnel,
		TimeoutClientFin:    DefaultTimeoutClientFin,
	}
}

// Backend is one wsdirect node HAProxy forwards to.
type Backend struct {
	// Name identifies the node in server names (e.g. "node1" gives
	// "node1_src1", "node1_src2", ...). Letters, digits, '_', '-' and '.';
	// empty means "node<N>", N its 1-based position in Config.Backends.
	Name string
	// Address is the node's IP address (usually its private IP) or a DNS
	// host name resolved by HAProxy at start-up.
	Address string
	// Port is the node's WebSocket port (wsdirect-node's is
	// DefaultBackendPort). Required.
	Port int
}

// Config describes one haproxy.cfg. Start from DefaultConfig; Render
// rejects invalid fields.
type Config struct {
	// Backends lists the nodes. At least one is required.
	Backends []Backend
	// SourceIPs are addresses owned by the HAProxy host (e.g. its secondary
	// private IPs). Each backend gets one server line per source IP with
	// "source <ip>", multiplying the per-node connection ceiling by
	// len(SourceIPs). Empty means one server line per backend and the
	// kernel's choice of source address.
	//
	// An entry may also be an environment reference "${NAME}" (NAME in
	// upper case), which HAProxy expands when it loads the file. The
	// haproxy module uses this: a host's secondary IPs are only known once
	// it exists, so its boot script discovers them and hands them to
	// HAProxy through the environment.
	SourceIPs []string
	// Bind is the frontend's listen address as "host:port"; host may be
	// "*" or empty for all IPv4 addresses.
	Bind string
	// Mode is ModeHTTP or ModeTCP.
	Mode string
	// Balance is the load-balancing algorithm: "leastconn", "roundrobin",
	// "source", "random" or "random(N)".
	Balance string
	// MaxConn caps concurrent connections for the whole process and the
	// frontend; at least 1. Each proxied connection uses two file
	// descriptors, so HAProxy needs a descriptor limit of about 2×MaxConn.
	MaxConn int
	// ServerMaxConn caps concurrent connections per server line (per
	// backend and source IP). 0 means no per-server cap.
	ServerMaxConn int
	// HealthCheckPath is the HTTP path checked in ModeHTTP
	// ("option httpchk GET <path>", expecting 200). Ignored in ModeTCP,
	// where checks are TCP connects.
	HealthCheckPath string
	// HealthCheckInterval is the time between checks ("inter"). It and
	// the timeouts below must be whole milliseconds from 1ms to HAProxy's
	// largest timer (about 24.8 days).
	HealthCheckInterval time.Duration
	// HealthCheckFall is how many failed checks mark a server down; at
	// least 1.
	HealthCheckFall int
	// HealthCheckRise is how many passed checks mark a server up again; at
	// least 1.
	HealthCheckRise int
	// TimeoutConnect bounds the TCP connect to a node.
	TimeoutConnect time.Duration
	// TimeoutClient bounds client inactivity before the WebSocket upgrade.
	TimeoutClient time.Duration
	// TimeoutServer bounds node inactivity before the WebSocket upgrade.
	TimeoutServer time.Duration
	// TimeoutTunnel bounds inactivity once the connection is a tunnel, i.e.
	// after the WebSocket upgrade (or for any TCP-mode connection). It
	// supersedes TimeoutClient/TimeoutServer for established WebSockets, so
	// it must exceed the application's ping interval.
	TimeoutTunnel time.Duration
	// TimeoutClientFin bounds half-closed client connections, so clients
	// that vanish after sending FIN do not pin tunnels for TimeoutTunnel.
	TimeoutClientFin time.Duration
	// StatsSocket, when set, is the path of an admin-level stats socket in
	// the global section (e.g. "/run/haproxy/admin.sock").
	StatsSocket string
	// StatsBind, when set, adds a "listen stats" HTTP listener on this
	// "host:port" serving the stats page at /stats.
	StatsBind string
	// Log, when set, is a global "log" target such as "/dev/log local0" or
	// "stdout format raw local0"; proxies then log through "log global".
	// Empty disables logging.
	Log string
	// TLSCertFile, when set, makes the frontend terminate TLS: the path of
	// a PEM file holding the certificate chain and its private key
	// (HAProxy's "crt" format). Clients then use wss:// and the nodes are
	// reached in plain text. TLS 1.2 minimum, HTTP/1.1 over ALPN. Empty:
	// no TLS on the frontend.
	TLSCertFile string
}

var (
	// HAProxy accepts letters, digits, '-', '_', '.' and ':' in proxy and
	// server names; ':' is left out because it reads like an address.
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	balancePattern = regexp.MustCompile(`^(leastconn|roundrobin|source|random|random\(([1-9][0-9]?)\))$`)
	envRefPattern  = regexp.MustCompile(`^\$\{[A-Z_][A-Z0-9_]*\}$`)
	hostLabel      = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	allDigits      = regexp.MustCompile(`^[0-9]+$`)
	// Paths go on a config line unquoted, so they must not contain spaces,
	// quotes, '#' or control characters.
	pathPattern = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@/%-]*$`)
	// Sockets and log targets likewise go on config lines as-is.
	socketPattern = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)
	logPattern    = regexp.MustCompile(`^[A-Za-z0-9@._:/\[\] -]+$`)
)

// maxTimeout is HAProxy's largest timer value, 2^31-1 milliseconds.
const maxTimeout = time.Duration(math.MaxInt32) * time.Millisecond

// normalized returns c with Backend names filled in by position. Slices
// are copied so that normalising never aliases the caller's data.
func (c Config) normalized() Config {
	out := c
	out.Backends = make([]Backend, len(c.Backends))
	for i, b := range c.Backends {
		if b.Name == "" {
			b.Name = fmt.Sprintf("node%d", i+1)
		}
		out.Backends[i] = b
	}
	out.SourceIPs = append([]string(nil), c.SourceIPs...)
	return out
}

// Validate reports every problem in c, joined into one error, or nil when
// Render would succeed.
func (c Config) Validate() error {
	_, err := c.normalize()
	return err
}

// normalize names the backends and validates; the returned Config is what
// gets rendered.
func (c Config) normalize() (Config, error) {
	n := c.normalized()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(n.Backends) == 0 {
		add("at least one backend is required")
	}
	names := map[string]int{}
	endpoints := map[string]int{}
	var backendFamilies []bool // true = IPv4, for backends given as IPs
	for i, b := range n.Backends {
		where := fmt.Sprintf("backend %d (%q)", i+1, b.Name)
		if !namePattern.MatchString(b.Name) {
			add("%s: name must start with a letter or digit and contain only letters, digits, '_', '-' or '.', at most 63 characters", where)
		} else if j, dup := names[b.Name]; dup {
			add("%s: name is already used by backend %d; backend names must be unique", where, j+1)
		} else {
			names[b.Name] = i
		}
		addr, err := checkHost(b.Address)
		if err != nil {
			add("%s: address %q: %v", where, b.Address, err)
		} else if addr.IsValid() {
			backendFamilies = append(backendFamilies, addr.Is4())
		}
		if b.Port < 1 || b.Port > 65535 {
			add("%s: port %d is out of range 1-65535", where, b.Port)
		}
		key := strings.ToLower(b.Address) + "|" + strconv.Itoa(b.Port)
		if addr.IsValid() {
			key = addr.String() + "|" + strconv.Itoa(b.Port)
		}
		if j, dup := endpoints[key]; dup && err == nil {
			add("%s: %s port %d is already listed as backend %d", where, b.Address, b.Port, j+1)
		} else {
			endpoints[key] = i
		}
	}

	seen := map[netip.Addr]int{}
	seenRefs := map[string]int{}
	for i, s := range n.SourceIPs {
		if envRefPattern.MatchString(s) {
			if j, dup := seenRefs[s]; dup {
				add("source IP %d: %s duplicates source IP %d; each source IP may appear once", i+1, s, j+1)
			}
			seenRefs[s] = i
			continue
		}
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			add("source IP %d: %q is neither an IP address nor an environment reference like ${SRC1}", i+1, s)
			continue
		}
		addr = addr.Unmap()
		if addr.IsUnspecified() || addr.IsMulticast() {
			add("source IP %d: %s cannot be a source address", i+1, s)
			continue
		}
		if j, dup := seen[addr]; dup {
			add("source IP %d: %s duplicates source IP %d; each source IP may appear once", i+1, s, j+1)
			continue
		}
		seen[addr] = i
		for _, is4 := range backendFamilies {
			if is4 != addr.Is4() {
				add("source IP %d: %s is not in the same address family as every backend address", i+1, s)
				break
			}
		}
	}

	if _, _, err := splitBind(n.Bind); err != nil {
		add("bind %q: %v", n.Bind, err)
	}
	if n.StatsBind != "" {
		if _, _, err := splitBind(n.StatsBind); err != nil {
			add("stats bind %q: %v", n.StatsBind, err)
		} else if n.StatsBind == n.Bind {
			add("stats bind %q must differ from the frontend bind", n.StatsBind)
		}
	}
	if n.Mode != ModeHTTP && n.Mode != ModeTCP {
		add("mode %q is not supported; use %q or %q", n.Mode, ModeHTTP, ModeTCP)
	}
	if !balancePattern.MatchString(n.Balance) {
		add("balance %q is not supported; use leastconn, roundrobin, source, random or random(N)", n.Balance)
	}
	if n.MaxConn < 1 {
		add("maxconn must be positive, got %d", n.MaxConn)
	}
	if n.ServerMaxConn < 0 {
		add("server maxconn must not be negative, got %d", n.ServerMaxConn)
	}
	if n.Mode == ModeHTTP && !pathPattern.MatchString(n.HealthCheckPath) {
		add("health check path %q must start with '/' and contain no spaces, quotes or '#'", n.HealthCheckPath)
	}
	if n.HealthCheckFall < 1 {
		add("health check fall must be positive, got %d", n.HealthCheckFall)
	}
	if n.HealthCheckRise < 1 {
		add("health check rise must be positive, got %d", n.HealthCheckRise)
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{
		{"health check interval", n.HealthCheckInterval},
		{"timeout connect", n.TimeoutConnect},
		{"timeout client", n.TimeoutClient},
		{"timeout server", n.TimeoutServer},
		{"timeout tunnel", n.TimeoutTunnel},
		{"timeout client-fin", n.TimeoutClientFin},
	} {
		switch {
		case t.d < time.Millisecond:
			add("%s must be at least 1ms, got %s", t.name, t.d)
		case t.d > maxTimeout:
			add("%s must be at most %s, got %s", t.name, maxTimeout, t.d)
		case t.d%time.Millisecond != 0:
			add("%s must be a whole number of milliseconds, got %s", t.name, t.d)
		}
	}
	if n.StatsSocket != "" && !socketPattern.MatchString(n.StatsSocket) {
		add("stats socket %q must be an absolute path of letters, digits, '.', '_', '-' and '/'", n.StatsSocket)
	}
	if n.Log != "" && !logPattern.MatchString(n.Log) {
		add("log target %q contains characters that cannot go on a config line", n.Log)
	}
	if n.TLSCertFile != "" && !socketPattern.MatchString(n.TLSCertFile) {
		add("TLS certificate file %q must be an absolute path of letters, digits, '.', '_', '-' and '/'", n.TLSCertFile)
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return n, nil
}

// checkHost accepts an IP address (returned) or a DNS host name (returns
// the zero Addr).
func checkHost(h string) (netip.Addr, error) {
	if h == "" {
		return netip.Addr{}, errors.New("must not be empty")
	}
	if addr, err := netip.ParseAddr(h); err == nil {
		if addr.Zone() != "" {
			return netip.Addr{}, errors.New("zoned IPv6 addresses are not supported")
		}
		addr = addr.Unmap()
		if addr.IsUnspecified() || addr.IsMulticast() {
			return netip.Addr{}, errors.New("is not a unicast address")
		}
		return addr, nil
	}
	if len(h) > 253 {
		return netip.Addr{}, errors.New("is neither an IP address nor a valid host name")
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	for _, l := range labels {
		if !hostLabel.MatchString(l) {
			return netip.Addr{}, errors.New("is neither an IP address nor a valid host name")
		}
	}
	// RFC 3696: a top-level label is never all-numeric, so "10.0.0.300"
	// is a mistyped IP, not a host name.
	if allDigits.MatchString(labels[len(labels)-1]) {
		return netip.Addr{}, errors.New("is not a valid IP address")
	}
	return netip.Addr{}, nil
}

// splitBind parses "host:port" where host may be "*", empty, or an IP.
func splitBind(s string) (netip.Addr, int, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, 0, errors.New(`must be "host:port", e.g. "*:80" or "10.0.0.5:80"`)
	}
	var addr netip.Addr
	if host != "" && host != "*" {
		addr, err = netip.ParseAddr(host)
		if err != nil || addr.Zone() != "" {
			return netip.Addr{}, 0, fmt.Errorf("host %q must be '*' or an IP address", host)
		}
		addr = addr.Unmap()
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return netip.Addr{}, 0, fmt.Errorf("port %q must be a number in 1-65535", portStr)
	}
	return addr, port, nil
}
