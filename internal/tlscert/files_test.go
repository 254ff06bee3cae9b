package tlscert

import (
	"bufio"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
)

func filesConfig(t *testing.T, certFile, keyFile string, names ...string) *Config {
	c := DefaultConfig()
	c.Mode = ModeFiles
	c.CertFile, c.KeyFile = certFile, keyFile
	c.Names = names
	c.CheckInterval = 50 * time.Millisecond
	c.Tickets = TicketsProcess
	c.Logger = testLogger()
	return c
}

// TestFilesReload replaces the certificate on disk under a live server: new
// handshakes get the new one, the connection opened before stays up and
// echoes, a broken replacement is refused while the served one stays, and
// Reload (SIGHUP) takes a replacement at once.
func TestFilesReload(t *testing.T) {
	ca, err := testca.New("files test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	issue := func() *testca.Leaf {
		l, err := ca.Issue([]string{"*.ws.example.test", "127.0.0.1"}, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	first := issue()
	certFile, keyFile, err := first.WriteFiles(dir, "tls")
	if err != nil {
		t.Fatal(err)
	}
	conf := filesConfig(t, certFile, keyFile, "n-3.ws.example.test")
	reg := prometheus.NewRegistry()
	conf.Registry = reg
	m, err := New(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("files mode not ready at start: %v", err)
	}
	ln := listen(t, "127.0.0.1:0")
	serveEcho(t, m, ln)
	addr := ln.Addr().String()
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "n-3.ws.example.test"}

	serial := func() string {
		t.Helper()
		c, err := handshake(addr, client)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	waitSerial := func(want string) {
		t.Helper()
		probe.Until(t, 10*time.Second, "new handshakes to get certificate "+want, func() error {
			got := serial()
			return probe.Check(got == want, "served %s", got)
		})
	}
	if got := serial(); got != first.Cert.SerialNumber.String() {
		t.Fatalf("served serial %s, want %s", got, first.Cert.SerialNumber)
	}
	open, err := handshake(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	r := bufio.NewReader(open)
	echoOnce(t, open, r, "before")

	// Replaced on disk: picked up by the periodic check.
	second := issue()
	writeAtomically(t, dir, certFile, second.CertPEM)
	writeAtomically(t, dir, keyFile, second.KeyPEM)
	waitSerial(second.Cert.SerialNumber.String())
	echoOnce(t, open, r, "after the swap")

	// A certificate without its key (a half-finished copy) is refused, and
	// the served one stays.
	third := issue()
	writeAtomically(t, dir, certFile, third.CertPEM)
	probe.Until(t, 10*time.Second, "the mismatched pair refused", func() error {
		return probe.Check(testutil.ToFloat64(m.metrics.errors.WithLabelValues("reload")) >= 1, "no reload error counted")
	})
	if got := serial(); got != second.Cert.SerialNumber.String() {
		t.Fatalf("after a broken replacement the server shows %s, want the previous %s", got, second.Cert.SerialNumber)
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("a refused replacement made the server not ready: %v", err)
	}

	// Its key arrives: served from then on. Reload is what SIGHUP calls.
	writeAtomically(t, dir, keyFile, third.KeyPEM)
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := serial(); got != third.Cert.SerialNumber.String() {
		t.Fatalf("after Reload the server shows %s, want %s", got, third.Cert.SerialNumber)
	}
	echoOnce(t, open, r, "after reload")

	// A certificate that does not cover the names is refused by Reload.
	other, err := ca.Issue([]string{"elsewhere.example.test"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, dir, certFile, other.CertPEM)
	writeAtomically(t, dir, keyFile, other.KeyPEM)
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), "does not cover") {
		t.Fatalf("Reload of a certificate for other names: %v, want a refusal", err)
	}
	if got := serial(); got != third.Cert.SerialNumber.String() {
		t.Fatalf("after a refused reload the server shows %s, want %s", got, third.Cert.SerialNumber)
	}
}

// writeAtomically replaces path by renaming a new file over it, as
// certificate tooling does.
func writeAtomically(t *testing.T, dir, path string, data []byte) {
	t.Helper()
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

func TestFilesRefusedAtStart(t *testing.T) {
	ca, err := testca.New("files test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good, err := ca.Issue([]string{"203.0.113.7"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := good.WriteFiles(dir, "good")
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.Issue([]string{"203.0.113.7"}, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expCert, expKey, err := expired.WriteFiles(dir, "expired")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, cert, key, want string
		names                 []string
	}{
		{"missing", filepath.Join(dir, "nope.pem"), keyFile, "no such file", nil},
		{"key of another cert", certFile, expKey, "private key does not match", nil},
		{"expired", expCert, expKey, "expired at", nil},
		{"name not covered", certFile, keyFile, `does not cover "203.0.113.8"`, []string{"203.0.113.8"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(filesConfig(t, tc.cert, tc.key, tc.names...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(filesConfig(t, certFile, keyFile, "203.0.113.7")); err != nil {
		t.Fatalf("good pair refused: %v", err)
	}
}

// TestFilesExpiryMakesNotReady: a served certificate that expires (no
// replacement arrived) makes the process not ready, with the reason, and
// tells the watchers; a fresh one on disk makes it ready again.
func TestFilesExpiryMakesNotReady(t *testing.T) {
	ca, err := testca.New("expiry CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	leaf, err := ca.Issue([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := leaf.WriteFiles(dir, "tls")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	c := filesConfig(t, certFile, keyFile)
	c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var seen []error
	m.Watch(func(err error) { mu.Lock(); seen = append(seen, err); mu.Unlock() })

	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	m.checkFilesExpiry()
	if err := m.Ready(); err == nil || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("after expiry: %v", err)
	}
	fresh, err := ca.Issue([]string{"127.0.0.1"}, time.Now().Add(time.Hour), time.Now().Add(5*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, dir, certFile, fresh.CertPEM)
	writeAtomically(t, dir, keyFile, fresh.KeyPEM)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("after a fresh certificate: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[0] != nil || seen[1] == nil || seen[2] != nil {
		t.Fatalf("watchers saw %v, want ready, not ready, ready", seen)
	}
}
