package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/logcheck"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/pebble"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// TestServeTLS: with -tls files auth answers on https:// only, /readyz says
// ready, and it hands out the URL a wss node advertised, scheme included.
// A client without the CA fails with a certificate error.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "", "keygen", "-out", dir); code != 0 {
		t.Fatal(errs)
	}
	_, line, _ := run(t, "pw\n", "hash-password", "-user", "alice", "-cost", "4")
	usersPath := filepath.Join(dir, "users")
	if err := os.WriteFile(usersPath, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := testca.New("auth test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"127.0.0.1", "auth.example.test"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := leaf.WriteFiles(dir, "tls")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseServeFlags([]string{
		"-bind", "127.0.0.1:0", "-gossip-bind", "127.0.0.1:0", "-gossip-key-file", filepath.Join(dir, gossipKeyFile),
		"-signing-key", filepath.Join(dir, signingKeyFile), "-users", usersPath, "-name", "auth-tls", "-log-level", "debug",
		"-tls", "files", "-tls-cert", certFile, "-tls-key", keyFile, "-tls-names", "auth.example.test",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ http, gossip string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	logs := &lockedBuffer{}
	go func() { done <- serve(ctx, o, logs, func(h, g string) { ready <- addrs{h, g} }) }()
	var a addrs
	select {
	case a = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
		// With TLS every line is still one JSON object, no key twice.
		n, err := logcheck.Lines([]byte(logs.String()))
		if err != nil {
			t.Error(err)
		}
		if !strings.Contains(logs.String(), `"tls":"files"`) {
			t.Errorf("no TLS line among %d:\n%s", n, logs.String())
		}
	}()

	key, err := cluster.LoadKeyFile(filepath.Join(dir, gossipKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	nc := cluster.LocalConfig()
	nc.Name, nc.Role, nc.PublicAddr, nc.WSPort, nc.Cap, nc.SecretKey = "node-1", cluster.RoleNode, "n-1.ws.example.test", 443, 10, key
	nc.WSScheme = "wss"
	nc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := cluster.Create(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Shutdown()
	if _, err := node.Join([]string{a.gossip}); err != nil {
		t.Fatal(err)
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	base := "https://" + a.http
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ready\n" {
		t.Fatalf("readyz %d %q", resp.StatusCode, body)
	}
	var cr wire.ConnectResponse
	probe.Until(t, 15*time.Second, "auth to assign the node", func() error {
		resp, err := client.Post(base+wire.ConnectPath, "application/json", strings.NewReader(`{"username":"alice","password":"pw"}`))
		if err != nil {
			return probe.Stop(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return probe.Stop(json.Unmarshal(body, &cr))
		case http.StatusServiceUnavailable:
			return fmt.Errorf("connect: %d %s", resp.StatusCode, body)
		}
		return probe.Stop(fmt.Errorf("connect: %d %s", resp.StatusCode, body))
	})
	if cr.URL != "wss://n-1.ws.example.test/ws" {
		t.Errorf("auth handed out %q, want the node's wss URL", cr.URL)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := http.Post(base+wire.ConnectPath, "application/json", strings.NewReader(`{}`)); !errors.As(err, &unknown) {
		t.Errorf("client without the CA: %v", err)
	}
}

// TestServeACMEAutoName: with -tls acme -tls-names auto, auth reads its
// public IPv4 from instance metadata, waiting while the instance has none
// (an Elastic IP not associated yet), then obtains an IP certificate for it
// from the ACME CA (pebble, real http-01) and serves https:// with it.
func TestServeACMEAutoName(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble")
	}
	const ip = "127.0.9.21"
	httpPort, tlsPort := pebble.FreePortOn(t, ip), pebble.FreePortOn(t, ip)
	po := pebble.DefaultOptions()
	po.HTTPPort, po.TLSPort = httpPort, tlsPort
	p := pebble.Start(t, po)
	md := &imdsAfter{after: 2, ip: ip}
	srv := httptest.NewServer(md)
	defer srv.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)

	dir := t.TempDir()
	if code, _, errs := run(t, "", "keygen", "-out", dir); code != 0 {
		t.Fatal(errs)
	}
	_, line, _ := run(t, "pw\n", "hash-password", "-user", "alice", "-cost", "4")
	usersPath := filepath.Join(dir, "users")
	if err := os.WriteFile(usersPath, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseServeFlags([]string{
		"-bind", net.JoinHostPort(ip, strconv.Itoa(tlsPort)), "-gossip-bind", "127.0.0.1:0", "-gossip-key-file", filepath.Join(dir, gossipKeyFile),
		"-signing-key", filepath.Join(dir, signingKeyFile), "-users", usersPath, "-name", "auth-auto", "-log-level", "debug",
		"-tls", "acme", "-tls-names", "auto", "-acme-directory", p.DirectoryURL(), "-acme-ca-root", p.CAFile,
		"-acme-storage", filepath.Join(dir, "acme"), "-acme-http-bind", net.JoinHostPort(ip, strconv.Itoa(httpPort)),
		"-acme-retry-min", "200ms", "-acme-retry-max", "1s",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, o, logs, nil) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
		if _, err := logcheck.Lines([]byte(logs.String())); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("auth log:\n%s", logs.String())
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.RootPool()}}}
	base := "https://" + net.JoinHostPort(ip, strconv.Itoa(tlsPort))
	probe.Until(t, 60*time.Second, "auth ready over https at its metadata address", func() error {
		select {
		case err := <-done:
			return probe.Stop(fmt.Errorf("serve exited: %v", err))
		default:
		}
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		cert := resp.TLS.PeerCertificates[0]
		return probe.Stop(probe.Check(len(cert.IPAddresses) == 1 && cert.IPAddresses[0].String() == ip && len(cert.DNSNames) == 0,
			"certificate for %v %v, want the IP %s only", cert.IPAddresses, cert.DNSNames, ip))
	})
	if n := strings.Count(logs.String(), "waiting for this instance's public IPv4 address"); n != 2 {
		t.Errorf("%d waiting lines while the metadata had no public IPv4, want 2", n)
	}
}

// imdsAfter is an IMDSv2 server whose public-ipv4 is 404 for the first
// `after` reads, then ip: an Elastic IP associated after launch.
type imdsAfter struct {
	after int32
	ip    string
	gets  atomic.Int32
}

func (m *imdsAfter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
		_, _ = io.WriteString(w, "token")
	case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/public-ipv4" && r.Header.Get("X-aws-ec2-metadata-token") == "token":
		if m.gets.Add(1) <= m.after {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, m.ip)
	default:
		http.NotFound(w, r)
	}
}
