package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/logcheck"
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Post(base+wire.ConnectPath, "application/json", strings.NewReader(`{"username":"alice","password":"pw"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, &cr); err != nil {
				t.Fatal(err)
			}
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("connect: %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cr.URL != "wss://n-1.ws.example.test/ws" {
		t.Errorf("auth handed out %q, want the node's wss URL", cr.URL)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := http.Post(base+wire.ConnectPath, "application/json", strings.NewReader(`{}`)); !errors.As(err, &unknown) {
		t.Errorf("client without the CA: %v", err)
	}
}
