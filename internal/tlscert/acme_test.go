package tlscert

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/pebble"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// acmeConfig points a Manager at p for names, with its challenge listeners
// on ip: http-01 on the port pebble validates, and the TLS listener (which
// answers tls-alpn-01) on pebble's TLS port.
func acmeConfig(t *testing.T, p *pebble.Pebble, storage, ip string, httpPort, tlsPort int, names ...string) *Config {
	c := DefaultConfig()
	c.Mode = ModeACME
	c.Names = names
	c.ACMEDirectory = p.DirectoryURL()
	c.ACMECARoots = p.CAFile
	c.ACMEStorage = storage
	c.ACMEHTTPAddr = net.JoinHostPort(ip, strconv.Itoa(httpPort))
	c.ListenAddr = net.JoinHostPort(ip, strconv.Itoa(tlsPort))
	c.CheckInterval = 200 * time.Millisecond
	c.RetryMin, c.RetryMax = 200*time.Millisecond, time.Second
	c.Tickets = TicketsProcess
	c.Logger = testLogger()
	return c
}

// startACME creates and starts a Manager and its TLS echo server.
func startACME(t *testing.T, c *Config) *Manager {
	t.Helper()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ln := listen(t, c.ListenAddr)
	serveEcho(t, m, ln)
	if err := m.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestACMEIPCertificate: a server on 127.0.8.1 gets an IP certificate from
// pebble with real validation, under the short-lived profile and without
// the IP in the Common Name. A client trusting only pebble's root connects
// (it sends no server name: it dialed an IP) and echoes; one that does not
// trust it fails fast with a certificate error. Restarted with its storage,
// the server serves the same certificate without ordering again.
func TestACMEIPCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble")
	}
	t.Parallel()
	const ip = "127.0.8.1"
	httpPort, tlsPort := pebble.FreePortOn(t, ip), pebble.FreePortOn(t, ip)
	po := pebble.DefaultOptions()
	po.HTTPPort, po.TLSPort, po.ShortLivedValidity = httpPort, tlsPort, 160*time.Hour
	p := pebble.Start(t, po)
	storage := t.TempDir()
	c := acmeConfig(t, p, storage, ip, httpPort, tlsPort, ip)
	c.ACMETLSALPN = false // http-01 here; tls-alpn-01 is the DNS test's
	m := startACME(t, c)
	waitReady(t, m, 60*time.Second)

	addr := c.ListenAddr
	roots := p.RootPool()
	conn, err := handshake(addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("client trusting pebble's root: %v", err)
	}
	defer conn.Close()
	echoOnce(t, conn, bufio.NewReader(conn), "over an IP certificate")
	leaf := conn.ConnectionState().PeerCertificates[0]
	if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != ip {
		t.Errorf("certificate IPs %v, want [%s]", leaf.IPAddresses, ip)
	}
	if strings.Contains(leaf.Subject.CommonName, ip) {
		t.Errorf("the IP is in the Common Name %q", leaf.Subject.CommonName)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 161*time.Hour || life < 159*time.Hour {
		t.Errorf("lifetime %v: not the shortlived profile's 160h", life)
	}
	if got := testutil.ToFloat64(m.metrics.notAfter); int64(got) != leaf.NotAfter.Unix() {
		t.Errorf("expiry gauge %v, want %d", got, leaf.NotAfter.Unix())
	}

	// System roots only: refused with a certificate error, at once.
	start := time.Now()
	_, err = handshake(addr, &tls.Config{})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("client without pebble's root: %v, want x509.UnknownAuthorityError", err)
	}
	// The error type says a certificate failure, not a timeout; this only
	// catches a hang, generously for a loaded machine.
	if took := time.Since(start); took > time.Minute {
		t.Errorf("the refusal took %v", took)
	}

	// Restart on the same storage: the stored certificate, no new order.
	m.Close()
	c2 := acmeConfig(t, p, storage, ip, httpPort, tlsPort, ip)
	c2.ACMETLSALPN = false
	c2.ListenAddr = net.JoinHostPort(ip, strconv.Itoa(pebble.FreePortOn(t, ip)))
	m2 := startACME(t, c2)
	waitReady(t, m2, 20*time.Second)
	again, err := handshake(c2.ListenAddr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := again.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("after a restart the server holds serial %s, want the stored %s: it ordered again", got, leaf.SerialNumber)
	}
	if strings.Count(p.Output(), "Issued certificate serial") > 1 {
		t.Fatalf("pebble issued more than one certificate:\n%s", p.Output())
	}
}

// TestACMEDNSNames: two servers with names that pebble-challtestsrv
// resolves to their 127.0.8.x addresses get name certificates, one through
// http-01 and one through tls-alpn-01; a client resolving through the same
// DNS connects by name.
func TestACMEDNSNames(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble")
	}
	t.Parallel()
	ips := []string{"127.0.8.11", "127.0.8.12"}
	names := []string{"n-1.ws.example.test", "n-2.ws.example.test"}
	httpPort, tlsPort := pebble.FreePortOn(t, ips...), pebble.FreePortOn(t, ips...)
	po := pebble.DefaultOptions()
	po.HTTPPort, po.TLSPort, po.DNS = httpPort, tlsPort, true
	p := pebble.Start(t, po)
	for i := range names {
		p.AddA(names[i], ips[i])
	}
	var ms []*Manager
	for i := range names {
		c := acmeConfig(t, p, t.TempDir(), ips[i], httpPort, tlsPort, names[i])
		if i == 0 {
			c.ACMETLSALPN = false // http-01 only
		} else {
			c.ACMEHTTPAddr = "" // tls-alpn-01 only, on the TLS listener
		}
		ms = append(ms, startACME(t, c))
	}
	roots := p.RootPool()
	dialer := &net.Dialer{Timeout: 5 * time.Second, Resolver: p.Resolver()}
	for i, m := range ms {
		waitReady(t, m, 60*time.Second)
		conn, err := tls.DialWithDialer(dialer, "tcp", net.JoinHostPort(names[i], strconv.Itoa(tlsPort)), &tls.Config{RootCAs: roots})
		if err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
		echoOnce(t, conn, bufio.NewReader(conn), "by name")
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != names[i] {
			t.Errorf("%s: certificate names %v", names[i], leaf.DNSNames)
		}
	}
}

// TestACMERenewal: with certificates that live 30 s, the server renews on
// its own before expiry (from half the lifetime on, as configured): new
// handshakes get the new certificate while a connection opened on the old
// one stays up and echoes.
func TestACMERenewal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble")
	}
	t.Parallel()
	const ip = "127.0.8.21"
	httpPort, tlsPort := pebble.FreePortOn(t, ip), pebble.FreePortOn(t, ip)
	po := pebble.DefaultOptions()
	po.HTTPPort, po.TLSPort, po.ShortLivedValidity = httpPort, tlsPort, 30*time.Second
	p := pebble.Start(t, po)
	c := acmeConfig(t, p, t.TempDir(), ip, httpPort, tlsPort, ip)
	c.RenewCheckInterval = 500 * time.Millisecond
	c.RenewalWindowRatio = 0.5
	m := startACME(t, c)
	waitReady(t, m, 60*time.Second)
	roots := p.RootPool()
	open, err := handshake(c.ListenAddr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	r := bufio.NewReader(open)
	echoOnce(t, open, r, "before renewal")
	first := open.ConnectionState().PeerCertificates[0]

	deadline := first.NotAfter
	for {
		conn, err := handshake(c.ListenAddr, &tls.Config{RootCAs: roots})
		if err != nil {
			t.Fatalf("handshake while waiting for renewal: %v", err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			// The window opens at half the lifetime (15 s before expiry);
			// how much of it the order takes depends on the machine.
			t.Logf("renewed %v before the old certificate expired", time.Until(first.NotAfter).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate expired at %v without a renewal", first.NotAfter)
		}
		time.Sleep(100 * time.Millisecond)
	}
	echoOnce(t, open, r, "after renewal")
	if err := m.Ready(); err != nil {
		t.Fatalf("not ready after renewal: %v", err)
	}
}

// TestACMEUnreachableThenReady: with the CA down the server is not ready,
// says why and keeps retrying; when the CA comes up it gets its
// certificate and becomes ready.
func TestACMEUnreachableThenReady(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble")
	}
	t.Parallel()
	const ip = "127.0.8.31"
	httpPort, tlsPort := pebble.FreePortOn(t, ip), pebble.FreePortOn(t, ip)
	po := pebble.DefaultOptions()
	po.HTTPPort, po.TLSPort = httpPort, tlsPort
	p := pebble.Prepare(t, po)
	c := acmeConfig(t, p, t.TempDir(), ip, httpPort, tlsPort, ip)
	m := startACME(t, c)

	// At least three failed attempts: retried, with backoff.
	probe.Until(t, 30*time.Second, "three failed attempts", func() error {
		n := testutil.ToFloat64(m.metrics.errors.WithLabelValues("obtain"))
		return probe.Check(n >= 3, "%v attempts, not ready: %v", n, m.Ready())
	})
	err := m.Ready()
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), p.DirectoryURL()) {
		t.Fatalf("not-ready reason %v: want the directory and the cause", err)
	}
	if testutil.ToFloat64(m.metrics.ready) != 0 {
		t.Fatal("wsdirect_tls_ready is not 0")
	}
	if _, err := handshake(c.ListenAddr, &tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Fatal("a handshake succeeded without a certificate")
	}

	p.Start()
	waitReady(t, m, 30*time.Second)
	conn, err := handshake(c.ListenAddr, &tls.Config{RootCAs: p.RootPool()})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}
