package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/logcheck"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/pebble"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// TestPlaintextOffLoopbackRefused: without TLS, a node that binds an
// address other than loopback refuses to start and says what to do; -dev
// and -tls offload are the two ways to say it is on purpose.
func TestPlaintextOffLoopbackRefused(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := token.GenerateKey()
	pub := filepath.Join(dir, "s.pub")
	if err := token.WriteKeyPair(filepath.Join(dir, "s.key"), pub, priv); err != nil {
		t.Fatal(err)
	}
	gk := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(gk, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	code := run(context.Background(), []string{"-auth-keys", pub, "-gossip-key-file", gk, "-bind", "0.0.0.0:8080"}, make(chan os.Signal), &out)
	if code != 2 || !strings.Contains(out.String(), "clear text") || !strings.Contains(out.String(), "-tls acme") {
		t.Fatalf("exit %d, output %q; want 2 and a message saying why and what to do", code, out.String())
	}
	for _, extra := range [][]string{{"-dev"}, {"-tls", "offload"}} {
		args := append([]string{"-auth-keys", pub, "-gossip-key-file", gk, "-bind", "0.0.0.0:8080"}, extra...)
		if _, err := parseFlags(args, io.Discard); err != nil {
			t.Errorf("%v refused: %v", extra, err)
		}
	}
}

// observer is an auth-role gossip member that watches the node.
func observer(t *testing.T) *cluster.Cluster {
	t.Helper()
	cc := cluster.LocalConfig()
	cc.Name, cc.Role, cc.Dev = "observer", cluster.RoleAuth, true
	cc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	obs, err := cluster.Create(cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obs.Shutdown() })
	return obs
}

func waitMember(t *testing.T, obs *cluster.Cluster, what string, timeout time.Duration, cond func(cluster.Member) bool) cluster.Member {
	t.Helper()
	var seen cluster.Member
	probe.Until(t, timeout, "the observer to see "+what, func() error {
		for _, m := range obs.Members() {
			if m.Name == "n1" && cond(m) {
				seen = m
				return nil
			}
		}
		return fmt.Errorf("members %+v", obs.Members())
	})
	return seen
}

// TestTLSFiles: -tls files serves wss:// and https:// /readyz with the
// operator's certificate and advertises wss://; a client without the CA is
// refused with a certificate error; SIGHUP after the files were replaced
// serves the new certificate to new handshakes while an open connection
// stays up.
func TestTLSFiles(t *testing.T) {
	ca, err := testca.New("node files CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first, err := ca.Issue([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := first.WriteFiles(dir, "tls")
	if err != nil {
		t.Fatal(err)
	}
	obs := observer(t)
	client := &tls.Config{RootCAs: ca.Pool()}
	h := startWith(t, hopts{client: client}, "-tls", "files", "-tls-cert", certFile, "-tls-key", keyFile,
		"-tls-check-interval", "1h", "-join", obs.GossipAddr())
	waitMember(t, obs, "the node on wss://", 10*time.Second, func(m cluster.Member) bool {
		return m.Alive && m.URL() == "wss://"+h.addr+"/ws" && authsvc.Candidate(m, 0)
	})

	ws, err := h.dial(h.signer)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer ws.Close()
	echo(t, ws, "over wss")
	if got := ws.NetConn().(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("served serial %s, want %s", got, first.Cert.SerialNumber)
	}

	// No CA: a certificate error, not a hang.
	tok, _, _ := h.signer.Mint("mallory", "n1")
	h.toks = append(h.toks, tok)
	d := *websocket.DefaultDialer
	d.HandshakeTimeout = 5 * time.Second
	_, _, err = d.Dial("wss://"+h.addr+"/ws?token="+tok, nil)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("dial without the CA: %v", err)
	}
	// Plain http gets net/http's "HTTP request to an HTTPS server" 400.
	if resp, err := http.Get("http://" + h.addr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain http on the TLS port: %d", resp.StatusCode)
		}
	}

	second, err := ca.Issue([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := second.WriteFiles(dir, "tls"); err != nil {
		t.Fatal(err)
	}
	h.sigs <- syscall.SIGHUP
	probe.Until(t, 10*time.Second, "SIGHUP to bring in the new certificate", func() error {
		c, err := tls.Dial("tcp", h.addr, client)
		if err != nil {
			return probe.Stop(err)
		}
		got := c.ConnectionState().PeerCertificates[0].SerialNumber
		c.Close()
		return probe.Check(got.Cmp(second.Cert.SerialNumber) == 0, "served serial %s", got)
	})
	echo(t, ws, "still up after the reload")
}

func echo(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if _, m, err := ws.ReadMessage(); err != nil || string(m) != msg {
		t.Fatalf("echo %q %v", m, err)
	}
}

// TestTLSACME: with the CA down, a node started with -tls acme joins the
// cluster marked not ready (auth would assign it nobody) and says why on
// /readyz of its http-01 port; once the CA is up the node gets an IP
// certificate, becomes a candidate, and a client trusting only the CA's
// root echoes over wss.
func TestTLSACME(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble")
	}
	const ip = "127.0.9.1"
	httpPort, tlsPort := pebble.FreePortOn(t, ip), pebble.FreePortOn(t, ip)
	po := pebble.DefaultOptions()
	po.HTTPPort, po.TLSPort = httpPort, tlsPort
	p := pebble.Prepare(t, po)
	obs := observer(t)
	httpAddr := net.JoinHostPort(ip, strconv.Itoa(httpPort))
	args := []string{"-name", "n1", "-bind", net.JoinHostPort(ip, strconv.Itoa(tlsPort)), "-gossip-bind", "127.0.0.1:0", "-dev",
		"-join", obs.GossipAddr(), "-log-level", "debug",
		"-tls", "acme", "-acme-directory", p.DirectoryURL(), "-acme-ca-root", p.CAFile,
		"-acme-storage", filepath.Join(t.TempDir(), "acme"), "-acme-http-bind", httpAddr,
		"-acme-retry-min", "200ms", "-acme-retry-max", "1s",
		// One host, one clock: a token minted as soon as the node is ready
		// must not fall within the restart leeway.
		"-token-leeway", "0s"}

	// run, not the harness: the node cannot answer /readyz over TLS yet.
	dir := t.TempDir()
	_, priv, _ := token.GenerateKey()
	pub := filepath.Join(dir, "s.pub")
	if err := token.WriteKeyPair(filepath.Join(dir, "s.key"), pub, priv); err != nil {
		t.Fatal(err)
	}
	signer := token.NewSigner(priv)
	args = append(args, "-auth-keys", pub)
	logs := &lockedBuffer{}
	sigs, exit := make(chan os.Signal, 1), make(chan int, 1)
	go func() { exit <- run(context.Background(), args, sigs, logs) }()
	t.Cleanup(func() {
		sigs <- syscall.SIGTERM
		select {
		case <-exit:
		case <-time.After(15 * time.Second):
			t.Error("node did not exit")
		}
		// The ACME library's lines (bridged from zap) obey the same rule
		// as the node's own: one JSON object, no key twice.
		n, err := logcheck.Lines([]byte(logs.String()))
		if err != nil {
			t.Error(err)
		}
		if !strings.Contains(logs.String(), `"library":"certmagic"`) {
			t.Errorf("no line from the ACME library among %d", n)
		}
		if t.Failed() {
			t.Logf("node log:\n%s", logs.String())
		}
	})

	m := waitMember(t, obs, "the node, not ready", 15*time.Second, func(m cluster.Member) bool { return m.Alive && m.NotReady })
	if authsvc.Candidate(m, 0) || m.URL() != "wss://"+ip+":"+strconv.Itoa(tlsPort)+"/ws" {
		t.Fatalf("not-ready node seen as %+v (URL %s); it must not be a candidate", m, m.URL())
	}
	probe.Until(t, 15*time.Second, "readyz on the http-01 port to say why", func() error {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return probe.Stop(fmt.Errorf("readyz %d without a certificate", resp.StatusCode))
		}
		return probe.Check(strings.Contains(string(b), "connection refused"), "readyz %q", b)
	})

	p.Start()
	waitMember(t, obs, "the node ready", 60*time.Second, func(m cluster.Member) bool { return m.Alive && authsvc.Candidate(m, 0) })
	tok, _, _ := signer.Mint("alice", "n1")
	d := *websocket.DefaultDialer
	d.TLSClientConfig = &tls.Config{RootCAs: p.RootPool()}
	ws, _, err := d.Dial("wss://"+net.JoinHostPort(ip, strconv.Itoa(tlsPort))+"/ws?token="+tok, nil)
	if err != nil {
		t.Fatalf("wss dial with pebble's root: %v", err)
	}
	defer ws.Close()
	echo(t, ws, "over an ACME IP certificate")
	if resp, err := http.Get("http://" + httpAddr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("the plain http-01 port serves /metrics: %d", resp.StatusCode)
		}
	}
}
