package secret

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ssmsim"
)

const gossipKey = "q2lB6m1bq1sDq2a5GfA7Q1pO2lZ7cX8fV0dQ3cY4nU8="

// startSim starts a Parameter Store with a few parameters and returns it
// with a Reader that uses its client.
func startSim(t *testing.T) (*ssmsim.Server, *Reader) {
	t.Helper()
	sim, err := ssmsim.Start(ssmsim.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	admin := sim.Client(ssmsim.AdminAccessKeyID)
	putParam(t, admin, "/wsdirect/prod/gossip-key", gossipKey+"\n", ssmtypes.ParameterTypeSecureString)
	putParam(t, admin, "/wsdirect/prod/auth-public-keys", "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----", ssmtypes.ParameterTypeString)
	putParam(t, admin, "/wsdirect/prod/blank", "  \n ", ssmtypes.ParameterTypeSecureString)
	c := DefaultConfig()
	c.Client = sim.Client(ssmsim.AdminAccessKeyID)
	r, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return sim, r
}

func putParam(t *testing.T, c *ssm.Client, name, value string, typ ssmtypes.ParameterType) {
	t.Helper()
	if _, err := c.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

func TestReadParameter(t *testing.T) {
	sim, r := startSim(t)
	got, err := r.Read("-gossip-key-file", "ssm:///wsdirect/prod/gossip-key")
	if err != nil || got != gossipKey {
		t.Fatalf("Read = %q, %v", got, err)
	}
	// A pinned version.
	putParam(t, sim.Client(ssmsim.AdminAccessKeyID), "/wsdirect/prod/gossip-key", "second", ssmtypes.ParameterTypeSecureString)
	if got, err := r.Read("-gossip-key-file", "ssm:///wsdirect/prod/gossip-key:1"); err != nil || got != gossipKey {
		t.Errorf("version 1: %q, %v", got, err)
	}
	if got, err := r.Read("-gossip-key-file", "ssm:///wsdirect/prod/gossip-key"); err != nil || got != "second" {
		t.Errorf("latest: %q, %v", got, err)
	}
	// Public material may be a String; a secret may not.
	pub, err := r.ReadPublic("-auth-keys", "ssm:///wsdirect/prod/auth-public-keys")
	if err != nil || !strings.HasPrefix(pub, "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("ReadPublic = %q, %v", pub, err)
	}
	_, err = r.Read("-signing-key", "ssm:///wsdirect/prod/auth-public-keys")
	if err == nil || !strings.Contains(err.Error(), "must be a SecureString") || strings.Contains(err.Error(), "MCow") {
		t.Errorf("String as a secret: %v", err)
	}
	if pub, err := r.ReadPublic("-auth-keys", "ssm:///wsdirect/prod/gossip-key:1"); err != nil || pub != gossipKey {
		t.Errorf("ReadPublic of a SecureString: %v", err)
	}
}

func TestReadParameterErrors(t *testing.T) {
	sim, r := startSim(t)
	sim.SetPrincipal("ASIAOTHER", ssmsim.Principal{ARN: "arn:aws:sts::123456789012:assumed-role/other/i-1",
		Policy: ssmsim.MustParsePolicy(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/other/*"}}`)})
	c := DefaultConfig()
	c.Client = sim.Client("ASIAOTHER")
	other, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    *Reader
		ref  string
		want string
	}{
		{"missing", r, "ssm:///wsdirect/prod/nope", "does not exist"},
		{"missing version", r, "ssm:///wsdirect/prod/gossip-key:9", "has no such version"},
		{"denied", other, "ssm:///wsdirect/prod/gossip-key", "access denied"},
		{"blank", r, "ssm:///wsdirect/prod/blank", "is empty"},
		{"relative", r, "ssm://wsdirect/prod/gossip-key", "must start with '/'"},
		{"reserved", r, "ssm:///aws/reference/x", "may not start"},
		{"no name", r, "ssm://", "is empty"},
	} {
		_, err := tc.r.Read("-gossip-key-file", tc.ref)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "-gossip-key-file: ") || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q, want the flag and %q", tc.name, msg, tc.want)
		}
		if strings.Contains(msg, gossipKey) {
			t.Errorf("%s: the error shows the secret: %s", tc.name, msg)
		}
	}
	_, err = r.Read("-x", "ssm:///wsdirect/prod/nope")
	var nf *ssmtypes.ParameterNotFound
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "/wsdirect/prod/nope") {
		t.Errorf("the SDK's error is not wrapped: %v", err)
	}
}

// TestReadTimeout: an endpoint that never answers fails the read within
// the Timeout (plus a bounded grace), naming the parameter.
func TestReadTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := DefaultConfig()
	c.Timeout = 300 * time.Millisecond
	c.Client = ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.AnonymousCredentials{}, Retryer: aws.NopRetryer{}})
	r, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := r.Read("-users", "ssm:///wsdirect/prod/users"); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "-users: SSM parameter /wsdirect/prod/users") {
			t.Errorf("timeout: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Read did not give up")
	}
}

// TestDefaultClientFromEnvironment: without Config.Client the Reader
// builds one SSM client from the standard AWS settings (here
// AWS_ENDPOINT_URL_SSM, as the local cloud sets it), keeps it, and does not
// keep a failed build.
func TestDefaultClientFromEnvironment(t *testing.T) {
	sim, _ := startSim(t)
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", ssmsim.AdminAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
	t.Setenv("AWS_ENDPOINT_URL_SSM", sim.URL())
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	r, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read("-gossip-key-file", "ssm:///wsdirect/prod/gossip-key"); err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Fatalf("without a region: %v", err)
	}
	t.Setenv("AWS_REGION", "us-east-1")
	if got, err := r.Read("-gossip-key-file", "ssm:///wsdirect/prod/gossip-key"); err != nil || got != gossipKey {
		t.Fatalf("with a region: %q, %v", got, err)
	}
	first := r.client
	if _, err := r.Read("-gossip-key-file", "ssm:///wsdirect/prod/gossip-key"); err != nil || r.client != first {
		t.Errorf("the client was built again (%v)", err)
	}
	if n := sim.CallCount("GetParameter"); n != 2 {
		t.Errorf("GetParameter calls = %d, want 2", n)
	}
}

func TestCheckParameterName(t *testing.T) {
	for _, ok := range []string{"/wsdirect/prod/gossip-key", "plain", "/a/b:3", "/a:label_1", "/a.b_c-d", "/" + strings.Repeat("a/", 14) + "z"} {
		if err := CheckParameterName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "arn:aws:ssm:us-east-1:123456789012:parameter/a", "/a/", "/a//b", "/a b", "/aws/x", "SSMx", "/a:", "/a:b c", "/" + strings.Repeat("a/", 15) + "z", "/" + strings.Repeat("x", 1011)} {
		if err := CheckParameterName(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Timeout = 0
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "Config.Timeout") {
		t.Errorf("zero timeout: %v", err)
	}
}

func TestIsParameter(t *testing.T) {
	if !IsParameter("ssm:///a") || IsParameter("/etc/wsdirect/ssm://x") || ParameterRef("/a/b") != "ssm:///a/b" {
		t.Error("reference scheme")
	}
}
