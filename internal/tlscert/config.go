package tlscert

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Mode says where a process's TLS certificate comes from, if anywhere.
type Mode string

const (
	// ModeOff serves plain ws:// and http://. Only for loopback and -dev.
	ModeOff Mode = "off"
	// ModeOffload listens in plain text behind something that terminates
	// TLS; clients are sent to wss://.
	ModeOffload Mode = "offload"
	// ModeFiles serves a certificate and key read from PEM files.
	ModeFiles Mode = "files"
	// ModeACME obtains and renews certificates from an ACME CA.
	ModeACME Mode = "acme"
)

// Modes lists every mode, in the order the flag help gives them.
var Modes = []Mode{ModeOff, ModeOffload, ModeFiles, ModeACME}

// ServesTLS reports whether the process itself terminates TLS.
func (m Mode) ServesTLS() bool { return m == ModeFiles || m == ModeACME }

// ClientScheme is the WebSocket scheme clients use to reach a process in
// this mode: "wss" unless TLS is off altogether.
func (m Mode) ClientScheme() string {
	if m == ModeOff {
		return "ws"
	}
	return "wss"
}

// TicketMode says how TLS session ticket keys are made.
type TicketMode string

const (
	// TicketsCluster derives the ticket keys from TicketSecret (the
	// binaries pass the gossip key, which every member holds) per
	// TicketRotation period with HKDF-SHA256 under a label of their own.
	// Every member then accepts the tickets of every other one, and of its
	// own previous life. Clients keep tickets per host name (or address),
	// so this pays off where one name is served by several processes or by
	// a restarted one: auth instances behind one DNS name or balancer, and
	// a node or auth instance that restarted (a rolling upgrade) — its
	// returning clients resume instead of paying for a full handshake.
	// Keys of the previous TicketKeep periods are accepted (so a ticket
	// lives at most TicketKeep*TicketRotation), and the next period's key
	// too, so clocks a little apart do not refuse each other's fresh
	// tickets. The trade-off: whoever learns the secret can decrypt the
	// tickets of every period, and with them TLS 1.2 sessions that used
	// them (TLS 1.3 resumption still runs an ECDHE exchange, so its traffic
	// stays forward-secret). The gossip key already lets its holder join
	// the cluster, so it must be guarded as the most sensitive secret
	// anyway; rotating it rotates the ticket keys.
	TicketsCluster TicketMode = "cluster"
	// TicketsProcess uses crypto/tls's own keys: random per process,
	// rotated daily. Resumption then works only with the same process.
	TicketsProcess TicketMode = "process"
	// TicketsOff disables session tickets: every connection pays for a
	// full handshake.
	TicketsOff TicketMode = "off"
)

// KeyType is the private key type of ACME certificates.
type KeyType string

// Key types.
const (
	KeyP256    KeyType = "p256"
	KeyP384    KeyType = "p384"
	KeyRSA2048 KeyType = "rsa2048"
)

// LetsEncryptProduction is Let's Encrypt's production ACME directory, the
// default CA.
const LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"

// ProfileShortLived is the ACME profile Let's Encrypt issues IP
// certificates under (about 6 days of validity).
const ProfileShortLived = "shortlived"

// Config configures a Manager. Start from DefaultConfig; New validates every
// field and fills none.
type Config struct {
	// Mode selects the certificate source.
	Mode Mode

	// Names are the DNS names and IP addresses the certificate is for. In
	// ModeACME each is ordered (at least one is required); in ModeFiles the
	// certificate must cover each (empty: not checked). The first is also
	// what a client that sends no server name gets when the connection's
	// local address has no certificate of its own.
	Names []string

	// CertFile and KeyFile are PEM files (ModeFiles): the certificate chain,
	// leaf first, and its private key.
	CertFile, KeyFile string

	// CheckInterval is how often the certificate is looked at: in ModeFiles
	// the files are re-read when their size, time or inode changed; in both
	// TLS modes an expired certificate makes the process not ready. Must be
	// > 0.
	CheckInterval time.Duration

	// ACMEDirectory is the CA's directory URL (https, or http on loopback
	// for tests).
	ACMEDirectory string
	// ACMEEmail is the account's contact address. Empty registers an
	// account without one.
	ACMEEmail string
	// ACMEProfile is the ACME profile to order under. Empty means
	// ProfileShortLived for IP identifiers and the CA's default for names.
	ACMEProfile string
	// ACMECARoots is a PEM file of extra root CAs to trust for the ACME
	// directory's HTTPS (private CAs, pebble in tests). Empty: system roots.
	ACMECARoots string
	// ACMEStorage is the directory certificates, keys and the ACME account
	// are kept in, so a restart finds them. Required in ModeACME; it is
	// created with mode 0700.
	ACMEStorage string
	// ACMEHTTPAddr is where the http-01 challenge listener binds
	// (host:port; the CA connects to port 80 of the name or IP). Empty
	// disables http-01.
	ACMEHTTPAddr string
	// ACMETLSALPN enables tls-alpn-01, answered on the TLS listener itself
	// (the CA connects to port 443). ListenAddr must then be set.
	ACMETLSALPN bool
	// ListenAddr is the TLS listener's bind address (host:port); used to
	// tell the ACME library that the tls-alpn-01 challenge is served there.
	ListenAddr string
	// KeyType is the key type of ACME certificates.
	KeyType KeyType
	// RenewalWindowRatio: an ACME certificate is renewed once this share
	// of its lifetime is left, unless the CA's renewal info says earlier.
	// In (0, 1).
	RenewalWindowRatio float64
	// RenewCheckInterval is how often the ACME library checks whether a
	// certificate needs renewal. Must be > 0.
	RenewCheckInterval time.Duration
	// RetryMin and RetryMax bound the backoff between failed attempts to
	// obtain the first certificate. RetryMin > 0, RetryMax >= RetryMin.
	RetryMin, RetryMax time.Duration

	// Tickets says how session ticket keys are made.
	Tickets TicketMode
	// TicketSecret is the shared secret TicketsCluster derives keys from
	// (at least 16 bytes). Ignored in the other ticket modes.
	TicketSecret []byte
	// TicketRotation is the period of one derived ticket key (> 0), and
	// TicketKeep how many past periods' keys are still accepted (>= 1).
	TicketRotation time.Duration
	TicketKeep     int

	// Logger receives the package's and the ACME library's logs. Nil means
	// slog.Default().
	Logger *slog.Logger
	// Registry receives the wsdirect_tls_* metrics. Nil means a fresh
	// registry of the Manager's own.
	Registry prometheus.Registerer
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns production defaults, in ModeOff.
func DefaultConfig() *Config {
	return &Config{
		Mode: ModeOff,
		// Cheap (two stat calls); an operator who replaced the files sees
		// them served within seconds, with no signal needed.
		CheckInterval: 10 * time.Second,
		ACMEDirectory: LetsEncryptProduction,
		ACMEStorage:   "/var/lib/wsdirect/acme",
		// The CA connects to port 80 for http-01; binding all interfaces
		// keeps it working behind EC2's 1:1 NAT.
		ACMEHTTPAddr: ":80",
		ACMETLSALPN:  true,
		// ECDSA P-256: the smallest and fastest signatures every client
		// accepts.
		KeyType: KeyP256,
		// A third of the lifetime left: day 60 of 90, day 4 of a 6-day IP
		// certificate, leaving two days of retries before it expires.
		RenewalWindowRatio: 1.0 / 3.0,
		// certmagic's default.
		RenewCheckInterval: 10 * time.Minute,
		// A CA blip or an address not associated yet clears within a
		// minute or two; a closed port 80 does not, and Let's Encrypt
		// allows 5 failed validations per name and hour, so the backoff
		// doubles up to half an hour.
		RetryMin: 30 * time.Second,
		RetryMax: 30 * time.Minute,
		Tickets:  TicketsCluster,
		// One key an hour, accepted for a day: a day-old client still
		// resumes, and a leaked derived key exposes one hour of tickets.
		TicketRotation: time.Hour,
		TicketKeep:     24,
	}
}

// Validate reports the first problem with c, naming the flag or field.
func (c *Config) Validate() error {
	switch c.Mode {
	case ModeOff, ModeOffload:
	case ModeFiles:
		if c.CertFile == "" || c.KeyFile == "" {
			return errors.New("tls: mode files needs a certificate and a key file (-tls-cert, -tls-key)")
		}
	case ModeACME:
		if len(c.Names) == 0 {
			return errors.New("tls: mode acme needs at least one name or IP to order a certificate for (-tls-names)")
		}
		if err := checkDirectory(c.ACMEDirectory); err != nil {
			return err
		}
		if c.ACMEStorage == "" {
			return errors.New("tls: mode acme needs a storage directory (-acme-storage), so a restart does not order again")
		}
		if c.ACMEHTTPAddr == "" && !c.ACMETLSALPN {
			return errors.New("tls: mode acme needs a challenge: -acme-http-bind for http-01, or -acme-tls-alpn for tls-alpn-01")
		}
		if c.ACMEHTTPAddr != "" {
			if _, _, err := net.SplitHostPort(c.ACMEHTTPAddr); err != nil {
				return fmt.Errorf("tls: -acme-http-bind %q: %v", c.ACMEHTTPAddr, err)
			}
		}
		if c.ACMETLSALPN {
			if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
				return fmt.Errorf("tls: tls-alpn-01 needs the TLS listen address, got %q: %v", c.ListenAddr, err)
			}
		}
		switch c.KeyType {
		case KeyP256, KeyP384, KeyRSA2048:
		default:
			return fmt.Errorf("tls: key type %q: want %s, %s or %s", c.KeyType, KeyP256, KeyP384, KeyRSA2048)
		}
		if !(c.RenewalWindowRatio > 0 && c.RenewalWindowRatio < 1) {
			return fmt.Errorf("tls: RenewalWindowRatio %v must be in (0, 1)", c.RenewalWindowRatio)
		}
		if c.RenewCheckInterval <= 0 {
			return errors.New("tls: RenewCheckInterval must be > 0")
		}
		if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
			return fmt.Errorf("tls: retry backoff %v..%v: want 0 < RetryMin <= RetryMax", c.RetryMin, c.RetryMax)
		}
	default:
		return fmt.Errorf("tls: mode %q: want one of %s", c.Mode, joinModes())
	}
	for _, n := range c.Names {
		if strings.EqualFold(n, NamesAuto) {
			return errors.New("tls: -tls-names auto stands for the instance's public IPv4 address and must be the only name; the binary resolves it before it starts TLS")
		}
		if err := checkName(n); err != nil {
			return err
		}
	}
	if c.Mode.ServesTLS() {
		if c.CheckInterval <= 0 {
			return errors.New("tls: CheckInterval must be > 0")
		}
		switch c.Tickets {
		case TicketsProcess, TicketsOff:
		case TicketsCluster:
			if len(c.TicketSecret) < 16 {
				return errors.New("tls: session tickets \"cluster\" need the shared secret (the gossip key); use -tls-session-tickets process without one")
			}
			if c.TicketRotation <= 0 || c.TicketKeep < 1 {
				return errors.New("tls: TicketRotation must be > 0 and TicketKeep >= 1")
			}
		default:
			return fmt.Errorf("tls: session tickets %q: want cluster, process or off", c.Tickets)
		}
	}
	return nil
}

func joinModes() string {
	s := make([]string, len(Modes))
	for i, m := range Modes {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

func checkDirectory(dir string) error {
	u, err := url.Parse(dir)
	if err != nil || u.Host == "" {
		return fmt.Errorf("tls: -acme-directory %q is not a URL", dir)
	}
	if u.Scheme == "https" {
		return nil
	}
	if u.Scheme == "http" {
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("tls: -acme-directory %q must be https (http only on loopback)", dir)
}

// checkName accepts a DNS name (with at most a leading wildcard label) or an
// IP address.
func checkName(n string) error {
	if net.ParseIP(n) != nil {
		return nil
	}
	name := strings.TrimPrefix(n, "*.")
	if name == "" || len(n) > 253 || strings.ContainsAny(name, "*/: \t") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("tls: name %q is neither an IP address nor a DNS name", n)
	}
	return nil
}

// NamesAuto as the only -tls-names value stands for this instance's public
// IPv4 address, read from EC2 instance metadata: an IP certificate without
// a DNS name. The binaries resolve it before New (wsdirect-auth waits for
// an Elastic IP associated after launch); Validate refuses it unresolved.
const NamesAuto = "auto"

// AutoNames reports whether names is [NamesAuto].
func AutoNames(names []string) bool {
	return len(names) == 1 && strings.EqualFold(strings.TrimSpace(names[0]), NamesAuto)
}

// HasIP reports whether any of names is an IP address.
func HasIP(names []string) bool {
	for _, n := range names {
		if net.ParseIP(n) != nil {
			return true
		}
	}
	return false
}

// CheckFlags validates flag values early, before the process has what it
// fills in later: the TLS listen address is bind, a ticket secret is
// assumed, with namesLater set an empty Names is allowed (the node orders
// its advertised address by default), and Names [NamesAuto] is allowed (the
// binary resolves it). It also runs CheckListener.
func (c *Config) CheckFlags(bind string, dev, namesLater bool) error {
	if err := c.CheckListener("-bind", bind, dev); err != nil {
		return err
	}
	v := *c
	v.ListenAddr = bind
	v.TicketSecret = make([]byte, 32)
	if namesLater && len(v.Names) == 0 || AutoNames(v.Names) {
		v.Names = []string{"advertised.invalid"}
	}
	return v.Validate()
}

// CheckListener refuses plain text where it leaves the machine: in ModeOff,
// a bind address that is not loopback is an error unless dev is set. ModeOffload
// is the operator saying TLS is terminated in front, and is allowed.
func (c *Config) CheckListener(flagName, bind string, dev bool) error {
	if c.Mode != ModeOff || dev {
		return nil
	}
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		host = bind
	}
	if IsLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("%s %s is not a loopback address and -tls is off: passwords and connection tokens would cross the network in clear text. "+
		"Use -tls files (a certificate and key) or -tls acme (a certificate from an ACME CA such as Let's Encrypt); "+
		"-tls offload when TLS is terminated in front of this process; or -dev on a developer machine", flagName, bind)
}

// IsLoopbackHost reports whether host (an IP literal or "localhost") is
// loopback. Empty and unspecified addresses bind every interface and are
// not.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// listFlag is a repeatable, comma-separated flag.
type listFlag struct{ p *[]string }

func (l listFlag) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l.p = append(*l.p, s)
		}
	}
	return nil
}

// RegisterFlags registers the TLS flags on fs, bound to c's fields with c's
// current values as defaults. Both binaries call it on a DefaultConfig, so
// node and auth have the same flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("tls", "certificate source: off (plain ws:// and http://; loopback or -dev only), offload (plain listener, TLS terminated in front; clients use wss://), files (-tls-cert and -tls-key) or acme (from an ACME CA)", func(v string) error {
		m := Mode(strings.ToLower(strings.TrimSpace(v)))
		for _, k := range Modes {
			if m == k {
				c.Mode = m
				return nil
			}
		}
		return fmt.Errorf("want one of %s", joinModes())
	})
	fs.Var(listFlag{&c.Names}, "tls-names", "DNS names and IPs the certificate is for (repeatable or comma list); acme orders them, files checks the certificate covers them; \"auto\" alone: this EC2 instance's public IPv4 address from instance metadata (waits until the instance has one)")
	fs.StringVar(&c.CertFile, "tls-cert", c.CertFile, "PEM certificate chain, leaf first (-tls files); re-read on SIGHUP and when it changes on disk")
	fs.StringVar(&c.KeyFile, "tls-key", c.KeyFile, "PEM private key of -tls-cert (-tls files)")
	fs.DurationVar(&c.CheckInterval, "tls-check-interval", c.CheckInterval, "how often the certificate files are checked for changes and the certificate for expiry")
	fs.Func("tls-session-tickets", "session ticket keys: cluster (derived from the gossip key: shared by every member and kept across restarts), process (random per process) or off (default cluster)", func(v string) error {
		switch t := TicketMode(v); t {
		case TicketsCluster, TicketsProcess, TicketsOff:
			c.Tickets = t
			return nil
		}
		return errors.New("want cluster, process or off")
	})
	fs.StringVar(&c.ACMEDirectory, "acme-directory", c.ACMEDirectory, "ACME directory URL of the CA")
	fs.StringVar(&c.ACMEEmail, "acme-email", c.ACMEEmail, "contact e-mail of the ACME account (optional)")
	fs.StringVar(&c.ACMEProfile, "acme-profile", c.ACMEProfile, `ACME profile to order under (default: "shortlived" for IP addresses, the CA's default for names)`)
	fs.StringVar(&c.ACMECARoots, "acme-ca-root", c.ACMECARoots, "PEM file of extra root CAs to trust for the ACME directory (private or test CAs)")
	fs.StringVar(&c.ACMEStorage, "acme-storage", c.ACMEStorage, "directory for ACME certificates, keys and account; keep it across restarts")
	fs.StringVar(&c.ACMEHTTPAddr, "acme-http-bind", c.ACMEHTTPAddr, `listen address for http-01 challenges (the CA connects to port 80); "" disables http-01`)
	fs.BoolVar(&c.ACMETLSALPN, "acme-tls-alpn", c.ACMETLSALPN, "answer tls-alpn-01 challenges on the TLS listener (the CA connects to port 443)")
	fs.DurationVar(&c.RetryMin, "acme-retry-min", c.RetryMin, "first wait after a failed attempt to obtain a certificate; doubles per failure")
	fs.DurationVar(&c.RetryMax, "acme-retry-max", c.RetryMax, "longest wait between attempts to obtain a certificate")
	fs.Func("acme-key-type", "key type of ACME certificates: p256, p384 or rsa2048 (default p256)", func(v string) error {
		c.KeyType = KeyType(strings.ToLower(v))
		return nil
	})
}
