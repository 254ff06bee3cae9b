package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ssmsim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// ssmSim is the Parameter Store of this test binary: internal/secret builds
// one SSM client per process from the standard AWS settings, so TestMain
// points them at one emulator for the whole run (as the local cloud sets
// AWS_ENDPOINT_URL_SSM for an instance).
var ssmSim *ssmsim.Server

func TestMain(m *testing.M) {
	sim, err := ssmsim.Start(ssmsim.DefaultConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	done, err := sim.UseForProcess("ASIANODETESTROLE0001")
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

func newSigner(t *testing.T) (*token.Signer, string) {
	t.Helper()
	_, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := token.NewSigner(priv)
	pem, err := token.EncodePublicKey(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return s, string(pem)
}

// TestSecretsFromParameters runs a node whose gossip key, auth public keys
// and admin token are parameters, and changes each through SIGHUP:
//   - the node serves tokens of the key in the parameter, and after the
//     parameter lists a second key and SIGHUP, tokens of that key too;
//   - the gossip key goes through a rotation's rounds: a member holding
//     only the new key is shut out while the node still sends with the old
//     one, and joins once the node sends with the new one;
//   - a deleted parameter keeps the old keys, and the log says which;
//   - the admin token follows its parameter.
func TestSecretsFromParameters(t *testing.T) {
	const p = "/wsdirect/node-test"
	keyA, keyB := make([]byte, cluster.KeySize), make([]byte, cluster.KeySize)
	for i := range keyA {
		keyA[i], keyB[i] = byte(i), byte(100+i)
	}
	signer1, pub1 := newSigner(t)
	signer2, pub2 := newSigner(t)
	putParam(t, p+"/gossip-key", cluster.EncodeKey(keyA), ssmtypes.ParameterTypeSecureString)
	putParam(t, p+"/auth-public-keys", pub1, ssmtypes.ParameterTypeString) // public: a String is enough
	putParam(t, p+"/admin-token", "adm-one", ssmtypes.ParameterTypeSecureString)

	h := &harness{t: t, dir: t.TempDir(), sigs: make(chan os.Signal, 2), exit: make(chan int, 1), logs: &lockedBuffer{}}
	h.addr = "127.0.0.1:" + strconv.Itoa(probe.LoopbackPort(t))
	args := []string{
		"-name", "n1", "-bind", h.addr, "-gossip-bind", "127.0.0.1:0",
		"-gossip-key-file", "ssm://" + p + "/gossip-key",
		"-auth-keys", "ssm://" + p + "/auth-public-keys",
		"-admin-token-file", "ssm://" + p + "/admin-token",
		"-drain-deadline", "2s", "-log-level", "debug", "-token-leeway", "0s",
	}
	go func() { h.exit <- run(context.Background(), args, h.sigs, h.logs) }()
	gossip := waitServing(t, h)
	t.Cleanup(func() {
		select {
		case h.sigs <- syscall.SIGTERM:
		default:
		}
		select {
		case <-h.exit:
		case <-time.After(15 * time.Second):
			t.Error("node did not exit")
		}
		for _, v := range []string{cluster.EncodeKey(keyA), cluster.EncodeKey(keyB), "adm-one", "adm-two"} {
			if strings.Contains(h.logs.String(), v) {
				t.Errorf("the logs show a secret (%.8q...)", v)
			}
		}
	})

	dialOK := func(s *token.Signer) bool {
		ws, err := h.dial(s)
		if err == nil {
			ws.Close()
		}
		return err == nil
	}
	if !dialOK(signer1) || dialOK(signer2) {
		t.Fatal("the node does not trust exactly the key in the parameter")
	}
	reloads := 0
	hup := func() {
		t.Helper()
		reloads++
		h.sigs <- syscall.SIGHUP
		probe.Until(t, 20*time.Second, fmt.Sprintf("reload %d logged", reloads), func() error {
			return probe.Check(strings.Count(h.logs.String(), `"msg":"SIGHUP: `) >= 3*reloads, "logs:\n%s", h.logs.String())
		})
	}

	// Auth keys: the parameter lists both keys (rotation).
	putParam(t, p+"/auth-public-keys", pub1+pub2, ssmtypes.ParameterTypeString)
	hup()
	if !dialOK(signer1) || !dialOK(signer2) {
		t.Error("after SIGHUP the node should trust both keys")
	}

	// Gossip: round 1 (learn B, send A). A member with B only cannot join.
	putParam(t, p+"/gossip-key", cluster.EncodeKey(keyA)+"\n"+cluster.EncodeKey(keyB), ssmtypes.ParameterTypeSecureString)
	hup()
	onlyB := peer(t, "peer-b1", keyB)
	if n, err := onlyB.Join([]string{gossip}); err == nil && n > 0 {
		t.Errorf("a member with only the new key joined while the node sends with the old one")
	}
	// Round 2 (send B): now it joins.
	putParam(t, p+"/gossip-key", cluster.EncodeKey(keyB)+","+cluster.EncodeKey(keyA), ssmtypes.ParameterTypeSecureString)
	hup()
	onlyB2 := peer(t, "peer-b2", keyB)
	if _, err := onlyB2.Join([]string{gossip}); err != nil {
		t.Errorf("a member with the new key cannot join after round 2: %v", err)
	}

	// A missing parameter keeps what was loaded.
	if _, err := ssmSim.Client(ssmsim.AdminAccessKeyID).DeleteParameter(context.Background(),
		&ssm.DeleteParameterInput{Name: aws.String(p + "/auth-public-keys")}); err != nil {
		t.Fatal(err)
	}
	hup()
	if !dialOK(signer2) {
		t.Error("a failed reload dropped the auth keys")
	}
	if !strings.Contains(h.logs.String(), "-auth-keys: SSM parameter /wsdirect/node-test/auth-public-keys: does not exist") {
		t.Errorf("the failure is not logged with the flag and parameter:\n%s", h.logs.String())
	}

	// Admin token.
	putParam(t, p+"/admin-token", "adm-two", ssmtypes.ParameterTypeSecureString)
	putParam(t, p+"/auth-public-keys", pub2, ssmtypes.ParameterTypeString)
	hup()
	drain := func(tok string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+h.addr+"/admin/drain", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if dialOK(signer1) {
		t.Error("key 1 still trusted after the parameter dropped it")
	}
	if code := drain("adm-one"); code != http.StatusUnauthorized {
		t.Errorf("old admin token: %d", code)
	}
	if code := drain("adm-two"); code != http.StatusAccepted {
		t.Errorf("new admin token: %d", code)
	}
}

// waitServing waits for the node's "serving" line and returns its gossip
// address.
func waitServing(t *testing.T, h *harness) string {
	t.Helper()
	var gossip string
	probe.Until(t, 30*time.Second, "the node's serving line", func() error {
		sc := bufio.NewScanner(strings.NewReader(h.logs.String()))
		for sc.Scan() {
			var line struct{ Msg, Gossip string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				gossip = line.Gossip
				return nil
			}
		}
		select {
		case code := <-h.exit:
			return probe.Stop(fmt.Errorf("exited with %d:\n%s", code, h.logs.String()))
		default:
		}
		return fmt.Errorf("not yet:\n%s", h.logs.String())
	})
	return gossip
}

func peer(t *testing.T, name string, key []byte) *cluster.Cluster {
	t.Helper()
	c := cluster.LocalConfig()
	c.Name, c.Role, c.SecretKey = name, cluster.RoleAuth, key
	c.Logger = slog.New(slog.DiscardHandler)
	cl, err := cluster.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Shutdown() })
	return cl
}

// TestAuthKeysParameterErrors: a node cannot start without its auth keys,
// and says which parameter is wrong.
func TestAuthKeysParameterErrors(t *testing.T) {
	putParam(t, "/wsdirect/node-bad/auth-public-keys", "not a PEM", ssmtypes.ParameterTypeString)
	for ref, want := range map[string]string{
		"ssm:///wsdirect/node-bad/nope":             "-auth-keys: SSM parameter /wsdirect/node-bad/nope: does not exist",
		"ssm:///wsdirect/node-bad/auth-public-keys": "-auth-keys ssm:///wsdirect/node-bad/auth-public-keys: no PUBLIC KEY",
	} {
		logs := &lockedBuffer{}
		code := run(context.Background(), []string{"-dev", "-name", "n1", "-bind", "127.0.0.1:0", "-gossip-bind", "127.0.0.1:0", "-auth-keys", ref},
			make(chan os.Signal), logs)
		if code != 1 || !strings.Contains(logs.String(), want) {
			t.Errorf("%s: exit %d, logs %s; want %q", ref, code, logs.String(), want)
		}
	}
	logs := &lockedBuffer{}
	if code := run(context.Background(), []string{"-dev", "-auth-keys", "ssm://relative/name"}, make(chan os.Signal), logs); code != 2 {
		t.Errorf("relative parameter name: exit %d", code)
	}
}

// TestTLSKeyFromParameter: with -tls files the key may live in Parameter
// Store (-tls-key ssm:///...): the node serves the pair, SIGHUP reads the
// parameter again with the replaced certificate file, and a key stored as
// a plain String, or missing, stops the start with the flag and the
// parameter named and nothing of the key in the logs.
func TestTLSKeyFromParameter(t *testing.T) {
	ca, err := testca.New("node key parameter CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first, err := ca.Issue([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "tls.pem")
	if err := os.WriteFile(certFile, first.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	const keyParam = "/wsdirect/node-tls/tls-key"
	putParam(t, keyParam, string(first.KeyPEM), ssmtypes.ParameterTypeSecureString)
	client := &tls.Config{RootCAs: ca.Pool()}
	h := startWith(t, hopts{client: client}, "-tls", "files", "-tls-cert", certFile, "-tls-key", "ssm://"+keyParam, "-tls-check-interval", "1h")
	served := func() string {
		c, err := tls.Dial("tcp", h.addr, client)
		if err != nil {
			return "handshake: " + err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := served(); got != first.Cert.SerialNumber.String() {
		t.Fatalf("served %s, want %s", got, first.Cert.SerialNumber)
	}

	second, err := ca.Issue([]string{"127.0.0.1"}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	putParam(t, keyParam, string(second.KeyPEM), ssmtypes.ParameterTypeSecureString)
	if err := os.WriteFile(certFile, second.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	h.sigs <- syscall.SIGHUP
	probe.Until(t, 10*time.Second, "SIGHUP to bring in the new pair", func() error {
		got := served()
		return probe.Check(got == second.Cert.SerialNumber.String(), "served %s", got)
	})
	if strings.Contains(h.logs.String(), "PRIVATE KEY") {
		t.Error("the key appears in the logs")
	}

	putParam(t, "/wsdirect/node-tls/plain-key", string(first.KeyPEM), ssmtypes.ParameterTypeString)
	for ref, want := range map[string]string{
		"ssm:///wsdirect/node-tls/plain-key": "-tls-key: SSM parameter /wsdirect/node-tls/plain-key is a String; a secret must be a SecureString",
		"ssm:///wsdirect/node-tls/nope":      "-tls-key: SSM parameter /wsdirect/node-tls/nope: does not exist",
	} {
		logs := &lockedBuffer{}
		code := run(context.Background(), []string{"-dev", "-name", "n1", "-bind", "127.0.0.1:0", "-gossip-bind", "127.0.0.1:0",
			"-auth-keys", filepath.Join(h.dir, "keys"), "-tls", "files", "-tls-cert", certFile, "-tls-key", ref}, make(chan os.Signal), logs)
		if code != 1 || !strings.Contains(logs.String(), want) || strings.Contains(logs.String(), "PRIVATE KEY") {
			t.Errorf("%s: exit %d, logs %s; want %q", ref, code, logs.String(), want)
		}
	}
	logs := &lockedBuffer{}
	if code := run(context.Background(), []string{"-dev", "-auth-keys", filepath.Join(h.dir, "keys"), "-tls", "files", "-tls-cert", certFile,
		"-tls-key", "ssm://relative/name"}, make(chan os.Signal), logs); code != 2 {
		t.Errorf("relative parameter name: exit %d, logs %s", code, logs.String())
	}
}
