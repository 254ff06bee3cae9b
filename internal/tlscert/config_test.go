package tlscert

import (
	"context"
	"crypto/tls"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
)

func TestCheckListener(t *testing.T) {
	cases := []struct {
		mode Mode
		bind string
		dev  bool
		ok   bool
	}{
		{ModeOff, "127.0.0.1:8080", false, true},
		{ModeOff, "127.0.0.42:8080", false, true},
		{ModeOff, "[::1]:8080", false, true},
		{ModeOff, "localhost:8080", false, true},
		{ModeOff, "0.0.0.0:8080", false, false},
		{ModeOff, ":8080", false, false},
		{ModeOff, "10.0.0.5:8080", false, false},
		{ModeOff, "[::]:8080", false, false},
		{ModeOff, "0.0.0.0:8080", true, true},
		{ModeOffload, "0.0.0.0:8080", false, true},
		{ModeFiles, "0.0.0.0:443", false, true},
		{ModeACME, "0.0.0.0:443", false, true},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		c.Mode = tc.mode
		err := c.CheckListener("-bind", tc.bind, tc.dev)
		if (err == nil) != tc.ok {
			t.Errorf("mode %s bind %s dev %v: %v, want ok=%v", tc.mode, tc.bind, tc.dev, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "clear text") {
			t.Errorf("message does not say why: %v", err)
		}
	}
}

func TestFlagsAndValidate(t *testing.T) {
	parse := func(args ...string) (*Config, error) {
		c := DefaultConfig()
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := parse("-tls", "acme", "-tls-names", "203.0.113.7", "-tls-names", "n-1.ws.example.com,n-2.ws.example.com",
		"-acme-email", "ops@example.com", "-acme-key-type", "P384", "-tls-session-tickets", "process")
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeACME || len(c.Names) != 3 || c.Names[2] != "n-2.ws.example.com" || c.KeyType != KeyP384 || c.Tickets != TicketsProcess {
		t.Fatalf("parsed %+v", c)
	}
	c.ListenAddr = "0.0.0.0:443"
	if err := c.Validate(); err != nil {
		t.Fatalf("valid acme config refused: %v", err)
	}
	if _, err := parse("-tls", "sometimes"); err == nil {
		t.Fatal("unknown mode accepted")
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"-tls", "files"}, "-tls-cert"},
		{[]string{"-tls", "acme"}, "-tls-names"},
		{[]string{"-tls", "acme", "-tls-names", "a.example.com", "-acme-directory", "http://ca.example.com/dir"}, "must be https"},
		{[]string{"-tls", "acme", "-tls-names", "a.example.com", "-acme-http-bind", "", "-acme-tls-alpn=false"}, "needs a challenge"},
		{[]string{"-tls", "acme", "-tls-names", "a b"}, "neither an IP"},
		{[]string{"-tls", "acme", "-tls-names", "a.example.com", "-acme-key-type", "dsa"}, "key type"},
		{[]string{"-tls", "files", "-tls-cert", "c", "-tls-key", "k"}, "gossip key"},
		{[]string{"-tls", "acme", "-tls-names", "auto"}, "binary resolves it"},
		{[]string{"-tls", "acme", "-tls-names", "auto,a.example.com"}, "must be the only name"},
	}
	// The binaries accept "auto" alone on the command line and resolve it
	// before New.
	auto, err := parse("-tls", "acme", "-tls-names", "AUTO", "-tls-session-tickets", "process")
	if err != nil || !AutoNames(auto.Names) {
		t.Fatalf("-tls-names AUTO: %v %v", auto, err)
	}
	if err := auto.CheckFlags("0.0.0.0:443", false, false); err != nil {
		t.Errorf("CheckFlags with -tls-names auto: %v", err)
	}
	for _, b := range bad {
		c, err := parse(b.args...)
		if err != nil {
			t.Fatalf("%v: %v", b.args, err)
		}
		c.ListenAddr = "0.0.0.0:443"
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: Validate = %v, want it to mention %q", b.args, err, b.want)
		}
	}
}

// TestClusterTicketsResumeAcrossInstances: two servers that share the
// ticket secret (as every node and auth instance shares the gossip key)
// resume each other's sessions; servers with per-process keys do not.
func TestClusterTicketsResumeAcrossInstances(t *testing.T) {
	ca, err := testca.New("tickets CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"ws.example.test"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := leaf.WriteFiles(t.TempDir(), "tls")
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	server := func(tickets TicketMode) string {
		c := filesConfig(t, certFile, keyFile)
		c.Tickets, c.TicketSecret = tickets, secret
		m, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		if err := m.Start(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		ln := listen(t, "127.0.0.1:0")
		serveEcho(t, m, ln)
		return ln.Addr().String()
	}
	for _, tc := range []struct {
		mode   TicketMode
		resume bool
	}{{TicketsCluster, true}, {TicketsProcess, false}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			a, b := server(tc.mode), server(tc.mode)
			for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				// One cache, keyed by the server name both share, as a
				// client reconnecting to another node of the same domain.
				conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "ws.example.test", MaxVersion: v,
					ClientSessionCache: tls.NewLRUClientSessionCache(8)}
				for i, addr := range []string{a, b} {
					c, err := handshake(addr, conf)
					if err != nil {
						t.Fatal(err)
					}
					// TLS 1.3 tickets arrive after the handshake: read
					// once so the client processes them.
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err := io.WriteString(c, "x\n"); err != nil {
						t.Fatal(err)
					}
					buf := make([]byte, 2)
					if _, err := io.ReadFull(c, buf); err != nil {
						t.Fatal(err)
					}
					resumed := c.ConnectionState().DidResume
					c.Close()
					if i == 0 && resumed {
						t.Fatalf("TLS %x: the first handshake resumed", v)
					}
					if i == 1 && resumed != tc.resume {
						t.Fatalf("TLS %x, tickets %s: second server resumed=%v, want %v", v, tc.mode, resumed, tc.resume)
					}
				}
			}
		})
	}
}

func TestTicketKeyRotation(t *testing.T) {
	c := DefaultConfig()
	c.TicketSecret = []byte("0123456789abcdef")
	m := &Manager{conf: *c}
	t0 := time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)
	k0 := m.ticketKeys(t0)
	if len(k0) != c.TicketKeep+2 {
		t.Fatalf("%d keys, want %d", len(k0), c.TicketKeep+2)
	}
	k1 := m.ticketKeys(t0.Add(c.TicketRotation))
	// An hour later the new current key is the old "next" one, and the old
	// current one is still accepted.
	if k1[0] != k0[1] || k1[2] != k0[0] {
		t.Fatal("rotation does not shift the derived keys by one period")
	}
	other := *c
	other.TicketSecret = []byte("fedcba9876543210")
	if (&Manager{conf: other}).ticketKeys(t0)[0] == k0[0] {
		t.Fatal("another secret derived the same key")
	}
}
