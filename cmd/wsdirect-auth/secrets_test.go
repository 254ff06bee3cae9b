package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/gossipcli"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ssmsim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// ssmSim is the Parameter Store of this test binary. The commands read
// parameters through internal/secret's one client per process, built from
// the standard AWS settings on first use, so TestMain points those at one
// emulator for the binary's whole life, as the local cloud does for an
// instance (AWS_ENDPOINT_URL_SSM).
var ssmSim *ssmsim.Server

// ssmKeyID is the access key the process signs with; tests give it a
// policy to see a denial.
const ssmKeyID = "ASIAAUTHTESTROLE0001"

func TestMain(m *testing.M) {
	sim, err := ssmsim.Start(ssmsim.DefaultConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	done, err := sim.UseForProcess(ssmKeyID)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ssmSim = sim
	code := m.Run()
	sim.Close()
	done()
	os.Exit(code)
}

func putParam(t *testing.T, name, value string, typ ssmtypes.ParameterType) {
	t.Helper()
	_, err := ssmSim.Client(ssmsim.AdminAccessKeyID).PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
}

func deleteParam(t *testing.T, name string) {
	t.Helper()
	if _, err := ssmSim.Client(ssmsim.AdminAccessKeyID).DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

// clusterSecrets makes a key pair, a users file and a gossip key, and
// stores them as SecureString parameters under prefix. It returns the
// command-line flags that read them and the values, for checks.
type clusterSecrets struct {
	prefix               string
	signing, users, gkey string
	admin                string
	pubs                 token.KeySet
}

func newClusterSecrets(t *testing.T, prefix string) *clusterSecrets {
	t.Helper()
	dir := t.TempDir()
	if code, _, errs := run(t, "", "keygen", "-out", dir); code != 0 {
		t.Fatal(errs)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	_, line, _ := run(t, "pw\n", "hash-password", "-user", "alice", "-cost", "4")
	pubs, err := token.LoadKeySet(filepath.Join(dir, signingPubFile))
	if err != nil {
		t.Fatal(err)
	}
	s := &clusterSecrets{prefix: prefix, signing: read(signingKeyFile), users: line, gkey: strings.TrimSpace(read(gossipKeyFile)), admin: "adm1n-" + prefix, pubs: pubs}
	putParam(t, prefix+"/signing-key", s.signing, ssmtypes.ParameterTypeSecureString)
	putParam(t, prefix+"/users", s.users, ssmtypes.ParameterTypeSecureString)
	putParam(t, prefix+"/gossip-key", s.gkey, ssmtypes.ParameterTypeSecureString)
	putParam(t, prefix+"/admin-token", s.admin, ssmtypes.ParameterTypeSecureString)
	return s
}

func (s *clusterSecrets) flags() []string {
	return []string{
		"-signing-key", "ssm://" + s.prefix + "/signing-key",
		"-users", "ssm://" + s.prefix + "/users",
		"-gossip-key-file", "ssm://" + s.prefix + "/gossip-key",
		"-admin-token-file", "ssm://" + s.prefix + "/admin-token",
	}
}

// TestServeFromParameters boots the auth service with every secret in
// Parameter Store, as user data configures it on EC2, and uses it: a node
// holding the gossip key joins, alice logs in with the users file's
// password, her token verifies with the public key, and the admin token
// opens GET /v1/nodes. The logs never show a secret.
func TestServeFromParameters(t *testing.T) {
	sec := newClusterSecrets(t, "/wsdirect/boot")
	o, err := parseServeFlags(append(sec.flags(), "-bind", "127.0.0.1:0", "-gossip-bind", "127.0.0.1:0", "-name", "auth-ssm"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	httpAddr, gossipAddr, stop := startServe(t, o, logs)
	defer stop()

	key, err := cluster.DecodeKey(sec.gkey)
	if err != nil {
		t.Fatal(err)
	}
	nc := cluster.LocalConfig()
	nc.Name, nc.Role, nc.PublicAddr, nc.WSPort, nc.Cap, nc.SecretKey = "node-1", cluster.RoleNode, "127.0.0.1", 9999, 10, key
	nc.Logger = slog.New(slog.DiscardHandler)
	node, err := cluster.Create(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Shutdown()
	if _, err := node.Join([]string{gossipAddr}); err != nil {
		t.Fatal(err)
	}
	cr := connectUntilOK(t, "http://"+httpAddr, `{"username":"alice","password":"pw"}`)
	if _, err := token.NewVerifier("node-1", sec.pubs).Verify(cr.Token); err != nil {
		t.Errorf("token: %v", err)
	}
	if code := adminStatus(t, "http://"+httpAddr, sec.admin); code != http.StatusOK {
		t.Errorf("admin token from the parameter: %d", code)
	}
	for _, v := range []string{sec.gkey, sec.admin, "PRIVATE KEY", sec.users[6:30]} {
		if strings.Contains(logs.String(), v) {
			t.Errorf("the logs show a secret (%.12q...)", v)
		}
	}
	if n := ssmSim.CallCount("GetParameter"); n < 4 {
		t.Errorf("GetParameter calls = %d, want one per secret at least", n)
	}
}

// TestServeParameterErrors: a boot that cannot read a secret stops with an
// error naming the flag and the parameter (and why), never the secret.
func TestServeParameterErrors(t *testing.T) {
	sec := newClusterSecrets(t, "/wsdirect/bad")
	putParam(t, "/wsdirect/bad/plain-key", sec.signing, ssmtypes.ParameterTypeString)
	base := func(flag, ref string) []string {
		f := sec.flags()
		for i := range f {
			if f[i] == flag {
				f[i+1] = ref
			}
		}
		return append(f, "-bind", "127.0.0.1:0", "-gossip-bind", "127.0.0.1:0", "-name", "auth-bad")
	}
	for _, tc := range []struct {
		name   string
		args   []string
		policy string // for the process's role; "" = all allowed
		want   string
	}{
		{"missing signing key", base("-signing-key", "ssm:///wsdirect/bad/nope"), "", "-signing-key: SSM parameter /wsdirect/bad/nope: does not exist"},
		{"String signing key", base("-signing-key", "ssm:///wsdirect/bad/plain-key"), "", "must be a SecureString"},
		{"missing users", base("-users", "ssm:///wsdirect/bad/nope"), "", "-users: SSM parameter /wsdirect/bad/nope: does not exist"},
		{"missing gossip key", base("-gossip-key-file", "ssm:///wsdirect/bad/nope"), "", "-gossip-key-file: SSM parameter /wsdirect/bad/nope"},
		{"missing admin token", base("-admin-token-file", "ssm:///wsdirect/bad/nope"), "", "-admin-token-file: SSM parameter /wsdirect/bad/nope"},
		{"users not allowed", sec.flags(), `{"Version":"2012-10-17","Statement":[
		   {"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"},
		   {"Effect":"Deny","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/wsdirect/bad/users"}]}`,
			"-users: SSM parameter /wsdirect/bad/users: access denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.policy != "" {
				ssmSim.SetPrincipal(ssmKeyID, ssmsim.Principal{ARN: "arn:aws:sts::123456789012:assumed-role/auth/i-1", Policy: ssmsim.MustParsePolicy(tc.policy)})
				defer ssmSim.SetPrincipal(ssmKeyID, ssmsim.Principal{ARN: "arn:aws:sts::123456789012:assumed-role/auth/i-1"})
			}
			args := tc.args
			if tc.policy != "" {
				args = append(args, "-bind", "127.0.0.1:0", "-gossip-bind", "127.0.0.1:0", "-name", "auth-bad")
			}
			o, err := parseServeFlags(args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err = serve(ctx, o, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve = %v, want %q", err, tc.want)
			}
			for _, v := range []string{sec.gkey, sec.admin, "PRIVATE KEY"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
	// Malformed references are usage errors, before anything is read.
	code, _, errs := run(t, "", "-dev", "-signing-key", "ssm://wsdirect/x", "-users", "u")
	if code != 2 || !strings.Contains(errs, "-signing-key: SSM parameter name \"wsdirect/x\" must start with '/'") {
		t.Errorf("relative parameter name: %d %q", code, errs)
	}
}

// TestReloadFromParameters is SIGHUP with every secret in Parameter Store:
// new values of all four take effect; then broken or missing parameters
// leave each secret as it was and say so, naming flag and parameter.
func TestReloadFromParameters(t *testing.T) {
	sec := newClusterSecrets(t, "/wsdirect/reload")
	o, err := parseServeFlags(append(sec.flags(), "-name", "auth-reload", "-gossip-bind", "127.0.0.1:0"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := loadSigner(o.signingKey, o.tokenTTL)
	if err != nil {
		t.Fatal(err)
	}
	users, err := loadUsers(o.users)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := o.gossip.ClusterConfig(o.name, cluster.RoleAuth, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.Create(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Shutdown()
	conf := authsvc.DefaultConfig()
	conf.Signer, conf.Credentials, conf.View, conf.AdminToken = signer, users, emptyView{}, sec.admin
	srv, err := authsvc.New(conf)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	// New values everywhere: a second key pair, a second user, the gossip
	// key rotation's first round, a new admin token.
	next := newClusterSecrets(t, "/wsdirect/next")
	putParam(t, sec.prefix+"/signing-key", next.signing, ssmtypes.ParameterTypeSecureString)
	_, bob, _ := run(t, "pw2\n", "hash-password", "-user", "bob", "-cost", "4")
	putParam(t, sec.prefix+"/users", sec.users+bob, ssmtypes.ParameterTypeSecureString)
	putParam(t, sec.prefix+"/gossip-key", sec.gkey+"\n"+next.gkey, ssmtypes.ParameterTypeSecureString)
	putParam(t, sec.prefix+"/admin-token", "rotated-admin", ssmtypes.ParameterTypeSecureString)
	logs := &lockedBuffer{}
	log := gossipcli.NewLogger(logs, slog.LevelInfo)
	reload(srv, cl, users, o, log)
	if got, want := srv.Signer().KeyID(), next.pubs.IDs()[0]; got != want {
		t.Errorf("signing key %s after reload, want %s", got, want)
	}
	if users.Len() != 2 || cl.KeyCount() != 2 {
		t.Errorf("after reload: %d users, %d gossip keys; want 2 and 2", users.Len(), cl.KeyCount())
	}
	if adminStatus(t, ts.URL, "rotated-admin") != http.StatusOK || adminStatus(t, ts.URL, sec.admin) != http.StatusUnauthorized {
		t.Error("the admin endpoint does not follow the reloaded token")
	}
	for _, msg := range []string{"signing key reloaded", "users file reloaded", "gossip keys reloaded", "admin token reloaded"} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("no %q in the logs:\n%s", msg, logs.String())
		}
	}

	// Now break every parameter: each secret keeps its value.
	deleteParam(t, sec.prefix+"/signing-key")
	putParam(t, sec.prefix+"/users", "not a users file", ssmtypes.ParameterTypeSecureString)
	putParam(t, sec.prefix+"/gossip-key", "not-base64!", ssmtypes.ParameterTypeSecureString)
	deleteParam(t, sec.prefix+"/admin-token")
	logs2 := &lockedBuffer{}
	kid := srv.Signer().KeyID()
	reload(srv, cl, users, o, gossipcli.NewLogger(logs2, slog.LevelInfo))
	if srv.Signer().KeyID() != kid || users.Len() != 2 || cl.KeyCount() != 2 || adminStatus(t, ts.URL, "rotated-admin") != http.StatusOK {
		t.Error("a failed reload changed a secret")
	}
	for _, want := range []string{
		"-signing-key: SSM parameter /wsdirect/reload/signing-key: does not exist",
		"users file ssm:///wsdirect/reload/users: line 1",
		"-gossip-key-file ssm:///wsdirect/reload/gossip-key: key 1 of 1",
		"-admin-token-file: SSM parameter /wsdirect/reload/admin-token: does not exist",
	} {
		if !strings.Contains(logs2.String(), want) {
			t.Errorf("the logs do not say %q:\n%s", want, logs2.String())
		}
	}
	if c := strings.Count(logs2.String(), "keeping the old"); c != 4 {
		t.Errorf("%d \"keeping the old\" lines, want 4:\n%s", c, logs2.String())
	}
	for _, v := range []string{sec.gkey, next.gkey, "rotated-admin", "PRIVATE KEY"} {
		if strings.Contains(logs.String()+logs2.String(), v) {
			t.Errorf("the logs show a secret (%.12q...)", v)
		}
	}
}

// startServe runs serve until the returned stop is called.
func startServe(t *testing.T, o *options, logs io.Writer) (httpAddr, gossipAddr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ http, gossip string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, o, logs, func(h, g string) { ready <- addrs{h, g} }) }()
	select {
	case a := <-ready:
		return a.http, a.gossip, func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("serve did not stop")
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return "", "", nil
}

// connectUntilOK posts a login until a node is assigned (503 until the
// node's gossip arrives).
func connectUntilOK(t *testing.T, url, body string) wire.ConnectResponse {
	t.Helper()
	var cr wire.ConnectResponse
	probe.Until(t, 20*time.Second, "a node assigned", func() error {
		resp, err := http.Post(url+wire.ConnectPath, "application/json", strings.NewReader(body))
		if err != nil {
			return probe.Stop(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return json.Unmarshal(data, &cr)
		case http.StatusServiceUnavailable:
			return fmt.Errorf("connect: %d %s", resp.StatusCode, data)
		}
		return probe.Stop(fmt.Errorf("connect: %d %s", resp.StatusCode, data))
	})
	return cr
}

func adminStatus(t *testing.T, url, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+wire.NodesPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// devCluster is an unencrypted loopback member for reload tests without a
// gossip key.
func devCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	c := cluster.LocalConfig()
	c.Name, c.Role, c.Dev, c.Logger = "auth-dev", cluster.RoleAuth, true, slog.New(slog.DiscardHandler)
	cl, err := cluster.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Shutdown() })
	return cl
}
