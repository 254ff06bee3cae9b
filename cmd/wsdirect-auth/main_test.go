package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/gossipcli"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/logcheck"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := realMain(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	code, out, errs := run(t, "", "keygen", "-out", dir)
	if code != 0 {
		t.Fatalf("keygen: %d %s", code, errs)
	}
	if !strings.Contains(out, "signing.pub") {
		t.Errorf("output %q", out)
	}
	fi, err := os.Stat(filepath.Join(dir, signingKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("signing.key mode %v, want 0600", fi.Mode().Perm())
	}
	priv, err := token.LoadPrivateKey(filepath.Join(dir, signingKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.LoadKeySet(filepath.Join(dir, signingPubFile))
	if err != nil {
		t.Fatal(err)
	}
	// The pair matches: a token minted with the key verifies with the pub.
	tok, _, err := token.NewSigner(priv).Mint("alice", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := token.NewVerifier("node-1", keys).Verify(tok); err != nil {
		t.Errorf("keygen pair does not verify: %v", err)
	}
	gk, err := cluster.LoadKeyFile(filepath.Join(dir, gossipKeyFile))
	if err != nil || len(gk) != 32 {
		t.Errorf("gossip key: %d bytes, %v", len(gk), err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, gossipKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("gossip.key mode %v, want 0600", fi.Mode().Perm())
	}

	// Never overwrite.
	before, _ := os.ReadFile(filepath.Join(dir, signingKeyFile))
	code, _, errs = run(t, "", "keygen", "-out", dir)
	if code == 0 || !strings.Contains(errs, "refusing to overwrite") {
		t.Errorf("second keygen: %d %q", code, errs)
	}
	after, _ := os.ReadFile(filepath.Join(dir, signingKeyFile))
	if !bytes.Equal(before, after) {
		t.Error("signing key changed")
	}
	if code, _, _ := run(t, "", "keygen"); code != 2 {
		t.Errorf("keygen without -out: %d, want 2", code)
	}
}

func TestHashPasswordCommand(t *testing.T) {
	code, out, errs := run(t, "s3cret\n", "hash-password", "-user", "alice", "-cost", "4")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	users, _, err := authsvc.ParseUsers([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword(users["alice"], []byte("s3cret")) != nil {
		t.Error("printed hash does not match the password")
	}
	// echo -n (no newline) works too, and the line round-trips through a
	// users file.
	_, out2, _ := run(t, "s3cret", "hash-password", "-user", "bob", "-cost", "4")
	p := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(p, []byte(out+out2), 0o600); err != nil {
		t.Fatal(err)
	}
	uf, err := authsvc.NewUsersFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := uf.Authenticate(context.Background(), nil, wire.ConnectRequest{Username: "bob", Password: "s3cret"}); err != nil || u != "bob" {
		t.Errorf("bob: %q %v", u, err)
	}
	for _, bad := range [][]string{{"hash-password"}, {"hash-password", "-user", "a", "-cost", "99"}} {
		if code, _, _ := run(t, "pw\n", bad...); code == 0 {
			t.Errorf("%v: exit 0", bad)
		}
	}
	if code, _, _ := run(t, "", "hash-password", "-user", "a"); code == 0 {
		t.Error("empty password: exit 0")
	}
}

func TestServeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-dev", "-users", "u"}, "-signing-key is required"},
		{[]string{"-dev", "-signing-key", "k"}, "exactly one credential backend"},
		{[]string{"-dev", "-signing-key", "k", "-users", "u", "-auth-callback", "http://x"}, "exactly one credential backend"},
		{[]string{"-dev", "-signing-key", "k", "-jwks-url", "http://x"}, "-jwt-issuer"},
		{[]string{"-signing-key", "k", "-users", "u"}, "-gossip-key-file is required"},
		{[]string{"-dev", "-signing-key", "k", "-users", "u", "-token-ttl", "1ms"}, "too short"},
		{[]string{"-dev", "-signing-key", "k", "-users", "u", "extra"}, "unexpected arguments"},
		{[]string{"-gossip-key-file", "g", "-signing-key", "k", "-users", "u", "-bind", "0.0.0.0:8443"}, "clear text"},
		{[]string{"-dev", "-signing-key", "k", "-users", "u", "-tls", "acme"}, "-tls-names"},
		{[]string{"-dev", "-signing-key", "k", "-users", "u", "-balancer-url", "wss://lb.example.com/ws"}, "go together"},
		{[]string{"-dev", "-signing-key", "k", "-users", "u", "-balancer-audience", "pool"}, "go together"},
		{[]string{"-dev", "-signing-key", "k", "-users", "u", "-balancer-url", "https://lb.example.com/ws", "-balancer-audience", "pool"}, "scheme must be ws or wss"},
	} {
		code, _, errs := run(t, "", tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: %d %q, want %q", tc.args, code, errs, tc.want)
		}
	}
	if code, _, _ := run(t, "", "-no-such-flag"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

// TestServeEndToEnd runs the auth service in-process on loopback with a
// node member joining its gossip, and connects through it.
func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "", "keygen", "-out", dir); code != 0 {
		t.Fatal(errs)
	}
	_, line, _ := run(t, "pw\n", "hash-password", "-user", "alice", "-cost", "4")
	usersPath := filepath.Join(dir, "users")
	if err := os.WriteFile(usersPath, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	adminPath := filepath.Join(dir, "admin")
	if err := os.WriteFile(adminPath, []byte("adm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseServeFlags([]string{
		"-bind", "127.0.0.1:0", "-gossip-bind", "127.0.0.1:0", "-gossip-key-file", filepath.Join(dir, gossipKeyFile),
		"-signing-key", filepath.Join(dir, signingKeyFile), "-users", usersPath, "-admin-token-file", adminPath,
		"-name", "auth-test", "-log-level", "warn",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ http, gossip string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, o, io.Discard, func(h, g string) { ready <- addrs{h, g} })
	}()
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
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	}()

	key, err := cluster.LoadKeyFile(filepath.Join(dir, gossipKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	nc := cluster.LocalConfig()
	nc.Name, nc.Role, nc.PublicAddr, nc.WSPort, nc.Cap, nc.SecretKey = "node-1", cluster.RoleNode, "127.0.0.1", 9999, 10, key
	nc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := cluster.Create(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Shutdown()
	if _, err := node.Join([]string{a.gossip}); err != nil {
		t.Fatal(err)
	}

	url := "http://" + a.http
	var cr wire.ConnectResponse
	// 503 until auth hears of the node over gossip.
	err = probe.Poll(context.Background(), 15*time.Second, 100*time.Millisecond, "auth to assign the node", func() error {
		resp, err := http.Post(url+wire.ConnectPath, "application/json", strings.NewReader(`{"username":"alice","password":"pw"}`))
		if err != nil {
			return probe.Stop(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return json.Unmarshal(body, &cr)
		case http.StatusServiceUnavailable:
			return fmt.Errorf("connect: %d %s", resp.StatusCode, body)
		}
		return probe.Stop(fmt.Errorf("connect: %d %s", resp.StatusCode, body))
	})
	if err != nil {
		t.Fatal(err)
	}
	if cr.NodeID != "node-1" || cr.URL != "ws://127.0.0.1:9999/ws" {
		t.Errorf("response %+v", cr)
	}
	keys, err := token.LoadKeySet(filepath.Join(dir, signingPubFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := token.NewVerifier("node-1", keys).Verify(cr.Token); err != nil {
		t.Errorf("token: %v", err)
	}
	resp, err := http.Post(url+wire.ConnectPath, "application/json", strings.NewReader(`{"username":"alice","password":"bad"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad password: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, url+wire.NodesPath, nil)
	req.Header.Set("Authorization", "Bearer adm")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []wire.NodeStatus
	_ = json.NewDecoder(resp.Body).Decode(&nodes)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(nodes) != 1 || nodes[0].Pending != 1 {
		t.Errorf("nodes: %d %+v", resp.StatusCode, nodes)
	}
}

// TestReload is what SIGHUP does: a new signing key and users file take
// effect; a broken users file keeps the old one.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	run(t, "", "keygen", "-out", dir)
	_, line, _ := run(t, "pw\n", "hash-password", "-user", "alice", "-cost", "4")
	usersPath := filepath.Join(dir, "users")
	if err := os.WriteFile(usersPath, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &options{signingKey: filepath.Join(dir, signingKeyFile), tokenTTL: token.DefaultTTL}
	signer, err := loadSigner(o.signingKey, o.tokenTTL)
	if err != nil {
		t.Fatal(err)
	}
	users, err := authsvc.NewUsersFile(usersPath)
	if err != nil {
		t.Fatal(err)
	}
	conf := authsvc.DefaultConfig()
	conf.Signer, conf.Credentials, conf.View = signer, users, emptyView{}
	srv, err := authsvc.New(conf)
	if err != nil {
		t.Fatal(err)
	}
	// Rotate: a second keygen into another dir, then point the flag there.
	dir2 := t.TempDir()
	run(t, "", "keygen", "-out", dir2)
	o.signingKey = filepath.Join(dir2, signingKeyFile)
	_, line2, _ := run(t, "pw2\n", "hash-password", "-user", "bob", "-cost", "4")
	if err := os.WriteFile(usersPath, []byte(line+line2), 0o600); err != nil {
		t.Fatal(err)
	}
	log := gossipcli.NewLogger(io.Discard, slog.LevelError)
	cl := devCluster(t)
	reload(srv, cl, users, o, log)
	if srv.Signer().KeyID() == signer.KeyID() {
		t.Error("signing key not rotated")
	}
	if users.Len() != 2 {
		t.Errorf("users after reload: %d", users.Len())
	}
	// Broken files keep the old state.
	o.signingKey = filepath.Join(dir, "missing.key")
	if err := os.WriteFile(usersPath, []byte("broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kid := srv.Signer().KeyID()
	reload(srv, cl, users, o, log)
	if srv.Signer().KeyID() != kid || users.Len() != 2 {
		t.Error("a failed reload changed the state")
	}
}

type emptyView struct{}

func (emptyView) Nodes() []cluster.Member { return nil }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeJoinsInBackground: with a -join address nobody answers on, the
// auth service still serves (503 no_capacity, as with no node), retries
// the join with backoff, and stops retrying once a node joins it. Every log
// line of the run is JSON without a key twice.
func TestServeJoinsInBackground(t *testing.T) {
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
		"-bind", "127.0.0.1:0", "-gossip-bind", "127.0.0.1:0", "-gossip-key-file", filepath.Join(dir, gossipKeyFile),
		"-signing-key", filepath.Join(dir, signingKeyFile), "-users", usersPath,
		"-join", "127.0.0.1:1", // nobody listens on port 1
		"-name", "auth-test", "-log-level", "debug",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type addrs struct{ http, gossip string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, o, logs, func(h, g string) { ready <- addrs{h, g} })
	}()
	var a addrs
	select {
	case a = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	connect := func() (int, wire.Error) {
		t.Helper()
		resp, err := http.Post("http://"+a.http+wire.ConnectPath, "application/json", strings.NewReader(`{"username":"alice","password":"pw"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e wire.Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e
	}
	if code, e := connect(); code != http.StatusServiceUnavailable || e.Code != authsvc.ResultNoCapacity {
		t.Fatalf("connect before any node: %d %+v", code, e)
	}
	const retry = `"msg":"no member answered; retrying"`
	waitLog := func(what string, within time.Duration, cond func(string) bool) {
		t.Helper()
		probe.Until(t, within, what+" in the logs", func() error {
			s := logs.String()
			return probe.Check(cond(s), "logs so far:\n%s", s)
		})
	}
	waitLog("second join attempt", 20*time.Second, func(s string) bool { return strings.Count(s, retry) >= 2 })

	key, err := cluster.LoadKeyFile(filepath.Join(dir, gossipKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	nc := cluster.LocalConfig()
	nc.Name, nc.Role, nc.PublicAddr, nc.WSPort, nc.Cap, nc.SecretKey = "node-1", cluster.RoleNode, "127.0.0.1", 9999, 10, key
	nc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := cluster.Create(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Shutdown()
	if _, err := node.Join([]string{a.gossip}); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 15*time.Second, "a connect to succeed once the node joined", func() error {
		code, e := connect()
		switch code {
		case http.StatusOK:
			return nil
		case http.StatusServiceUnavailable:
			return fmt.Errorf("still %d %+v", code, e)
		}
		return probe.Stop(fmt.Errorf("connect after the node joined: %d %+v", code, e))
	})
	// The loop notices after its current wait, which doubles per attempt
	// (capped at 30s): generous, since only the outcome is asserted.
	waitLog("end of the join attempts", 60*time.Second, func(s string) bool {
		return strings.Contains(s, `"msg":"another member joined this one; stopping the join attempts"`)
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	n, err := logcheck.Lines([]byte(logs.String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d log lines checked", n)
}
