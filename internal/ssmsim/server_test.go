package ssmsim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

func start(t *testing.T, mut ...func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	for _, m := range mut {
		m(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func noRetry(o *ssm.Options) { o.Retryer = aws.NopRetryer{} }

func put(t *testing.T, c *ssm.Client, name, value string, typ types.ParameterType, mut ...func(*ssm.PutParameterInput)) int64 {
	t.Helper()
	in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ}
	for _, m := range mut {
		m(in)
	}
	out, err := c.PutParameter(context.Background(), in)
	if err != nil {
		t.Fatalf("PutParameter %s: %v", name, err)
	}
	return out.Version
}

func get(c *ssm.Client, name string, decrypt bool) (*types.Parameter, error) {
	out, err := c.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(decrypt)})
	if err != nil {
		return nil, err
	}
	return out.Parameter, nil
}

// code is the AWS error code of err ("" for none).
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestConfigValidated(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"region":  func(c *Config) { c.Region = "" },
		"account": func(c *Config) { c.AccountID = "12" },
		"max":     func(c *Config) { c.MaxParameters = 0 },
	} {
		cfg := DefaultConfig()
		mut(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "Config.") {
			t.Errorf("%s: New = %v, want an error naming the field", name, err)
		}
	}
}

func TestStringAndSecureString(t *testing.T) {
	s := start(t)
	c := s.Client(AdminAccessKeyID, noRetry)
	if v := put(t, c, "/wsdirect/prod/region", "eu-west-1", types.ParameterTypeString); v != 1 {
		t.Errorf("first version = %d, want 1", v)
	}
	p, err := get(c, "/wsdirect/prod/region", false)
	if err != nil || aws.ToString(p.Value) != "eu-west-1" || p.Type != types.ParameterTypeString || p.Version != 1 {
		t.Fatalf("GetParameter = %+v, %v", p, err)
	}
	if got, want := aws.ToString(p.ARN), "arn:aws:ssm:us-east-1:123456789012:parameter/wsdirect/prod/region"; got != want {
		t.Errorf("ARN = %s, want %s", got, want)
	}
	if p.LastModifiedDate == nil || time.Since(*p.LastModifiedDate) > time.Minute {
		t.Errorf("LastModifiedDate = %v", p.LastModifiedDate)
	}

	const secret = "c2VjcmV0LWdvc3NpcC1rZXktMzItYnl0ZXMtbG9uZyE="
	put(t, c, "/wsdirect/prod/gossip-key", secret, types.ParameterTypeSecureString)
	at, ok := s.Parameter("/wsdirect/prod/gossip-key")
	if !ok || at.Type != TypeSecureString || at.KeyID == "" {
		t.Fatalf("stored = %+v, %v", at, ok)
	}
	if strings.Contains(at.Stored, secret) || strings.Contains(at.Stored, "secret-gossip") {
		t.Fatalf("the value is held in clear at rest: %q", at.Stored)
	}
	enc, err := get(c, "/wsdirect/prod/gossip-key", false)
	if err != nil || aws.ToString(enc.Value) != at.Stored {
		t.Fatalf("without decryption: %q, %v; want the ciphertext", aws.ToString(enc.Value), err)
	}
	dec, err := get(c, "/wsdirect/prod/gossip-key", true)
	if err != nil || aws.ToString(dec.Value) != secret {
		t.Fatalf("with decryption: %v", err)
	}
	keys := s.Keys()
	if len(keys) != 1 || !keys[0].Managed || keys[0].Aliases[0] != ManagedKeyAlias || keys[0].ID != at.KeyID {
		t.Errorf("keys = %+v; want the managed key, made on first use", keys)
	}
}

func TestVersionsAndSelectors(t *testing.T) {
	s := start(t)
	c := s.Client(AdminAccessKeyID, noRetry)
	put(t, c, "/app/key", "one", types.ParameterTypeSecureString)
	_, err := c.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/app/key"), Value: aws.String("two"), Type: types.ParameterTypeSecureString})
	var exists *types.ParameterAlreadyExists
	if !errors.As(err, &exists) {
		t.Fatalf("put without Overwrite: %v, want ParameterAlreadyExists", err)
	}
	over := func(in *ssm.PutParameterInput) { in.Overwrite = aws.Bool(true) }
	// The type may be left out when overwriting.
	if v := put(t, c, "/app/key", "two", "", over); v != 2 {
		t.Fatalf("overwrite version = %d", v)
	}
	for ref, want := range map[string]string{"/app/key": "two", "/app/key:1": "one", "/app/key:2": "two",
		"arn:aws:ssm:us-east-1:123456789012:parameter/app/key:1": "one"} {
		p, err := get(c, ref, true)
		if err != nil || aws.ToString(p.Value) != want {
			t.Errorf("GetParameter %s = %v, %v; want %s", ref, p, err, want)
			continue
		}
		if strings.Contains(ref, ":") && !strings.HasPrefix(ref, "arn:") && aws.ToString(p.Selector) == "" {
			t.Errorf("%s: no Selector in the answer", ref)
		}
		if aws.ToString(p.Name) != "/app/key" {
			t.Errorf("%s: Name %q", ref, aws.ToString(p.Name))
		}
	}
	var vnf *types.ParameterVersionNotFound
	if _, err := get(c, "/app/key:7", true); !errors.As(err, &vnf) {
		t.Errorf("missing version: %v", err)
	}
	var nf *types.ParameterNotFound
	if _, err := get(c, "/app/nope", true); !errors.As(err, &nf) {
		t.Errorf("missing parameter: %v", err)
	}
	if _, err := get(c, "arn:aws:ssm:us-east-1:999999999999:parameter/app/key", true); !errors.As(err, &nf) {
		t.Errorf("another account's ARN: %v", err)
	}
	var mismatch *types.HierarchyTypeMismatchException
	if _, err := c.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/app/key"), Value: aws.String("x"),
		Type: types.ParameterTypeString, Overwrite: aws.Bool(true)}); !errors.As(err, &mismatch) {
		t.Errorf("type change: %v", err)
	}
	// History keeps the last 100 versions.
	for i := 3; i <= 102; i++ {
		put(t, c, "/app/key", fmt.Sprint("v", i), "", over)
	}
	if _, err := get(c, "/app/key:2", true); !errors.As(err, &vnf) {
		t.Errorf("version 2 of 102 should have been dropped: %v", err)
	}
	if p, err := get(c, "/app/key:3", true); err != nil || aws.ToString(p.Value) != "v3" {
		t.Errorf("version 3: %v, %v", p, err)
	}
}

func TestPutValidation(t *testing.T) {
	s := start(t, func(c *Config) { c.MaxParameters = 3 })
	c := s.Client(AdminAccessKeyID, noRetry)
	long := strings.Repeat("x", 4097)
	for _, tc := range []struct {
		name string
		in   ssm.PutParameterInput
		code string
	}{
		{"relative path", ssm.PutParameterInput{Name: aws.String("a/b"), Value: aws.String("v"), Type: types.ParameterTypeString}, "ValidationException"},
		{"bad char", ssm.PutParameterInput{Name: aws.String("/a b"), Value: aws.String("v"), Type: types.ParameterTypeString}, "ValidationException"},
		{"aws prefix", ssm.PutParameterInput{Name: aws.String("/AWS/x"), Value: aws.String("v"), Type: types.ParameterTypeString}, "ValidationException"},
		{"ssm prefix", ssm.PutParameterInput{Name: aws.String("ssmthing"), Value: aws.String("v"), Type: types.ParameterTypeString}, "ValidationException"},
		{"trailing slash", ssm.PutParameterInput{Name: aws.String("/a/"), Value: aws.String("v"), Type: types.ParameterTypeString}, "ValidationException"},
		{"no type", ssm.PutParameterInput{Name: aws.String("/a"), Value: aws.String("v")}, "ValidationException"},
		{"bad type", ssm.PutParameterInput{Name: aws.String("/a"), Value: aws.String("v"), Type: "Secret"}, "ValidationException"},
		{"empty value", ssm.PutParameterInput{Name: aws.String("/a"), Value: aws.String(""), Type: types.ParameterTypeString}, "ValidationException"},
		{"too long", ssm.PutParameterInput{Name: aws.String("/a"), Value: aws.String(long), Type: types.ParameterTypeString}, "ValidationException"},
		{"key on String", ssm.PutParameterInput{Name: aws.String("/a"), Value: aws.String("v"), Type: types.ParameterTypeString, KeyId: aws.String("alias/aws/ssm")}, "ValidationException"},
		{"unknown key", ssm.PutParameterInput{Name: aws.String("/a"), Value: aws.String("v"), Type: types.ParameterTypeSecureString, KeyId: aws.String("alias/nope")}, "InvalidKeyId"},
		{"tags with overwrite", ssm.PutParameterInput{Name: aws.String("/a"), Value: aws.String("v"), Type: types.ParameterTypeString, Overwrite: aws.Bool(true),
			Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}, "ValidationException"},
		{"16 levels", ssm.PutParameterInput{Name: aws.String(strings.Repeat("/a", 16)), Value: aws.String("v"), Type: types.ParameterTypeString}, "HierarchyLevelLimitExceededException"},
		{"pattern", ssm.PutParameterInput{Name: aws.String("/p"), Value: aws.String("abc"), Type: types.ParameterTypeString, AllowedPattern: aws.String(`^\d+$`)}, "ParameterPatternMismatchException"},
		{"bad pattern", ssm.PutParameterInput{Name: aws.String("/p"), Value: aws.String("abc"), Type: types.ParameterTypeString, AllowedPattern: aws.String(`(`)}, "InvalidAllowedPatternException"},
	} {
		_, err := c.PutParameter(context.Background(), &tc.in)
		if code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if len(s.Names()) != 0 {
		t.Fatalf("failed puts stored %v", s.Names())
	}
	// 4 KB to 8 KB needs the Advanced tier, which cannot be left again.
	out, err := c.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/big"), Value: aws.String(long),
		Type: types.ParameterTypeSecureString, Tier: types.ParameterTierIntelligentTiering})
	if err != nil || out.Tier != types.ParameterTierAdvanced {
		t.Fatalf("intelligent tiering of 4097 bytes: %+v, %v", out, err)
	}
	if _, err := c.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/big"), Value: aws.String("v"),
		Overwrite: aws.Bool(true), Tier: types.ParameterTierStandard}); code(err) != "ValidationException" {
		t.Errorf("downgrade: %v", err)
	}
	put(t, c, "/two", "v", types.ParameterTypeString)
	put(t, c, "/three", "v", types.ParameterTypeString)
	var lim *types.ParameterLimitExceeded
	if _, err := c.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/four"), Value: aws.String("v"), Type: types.ParameterTypeString}); !errors.As(err, &lim) {
		t.Errorf("beyond MaxParameters: %v", err)
	}
}

func TestGetParametersAndDelete(t *testing.T) {
	s := start(t)
	c := s.Client(AdminAccessKeyID, noRetry)
	put(t, c, "/x/a", "A", types.ParameterTypeSecureString)
	put(t, c, "/x/b", "B", types.ParameterTypeString)
	out, err := c.GetParameters(context.Background(), &ssm.GetParametersInput{
		Names: []string{"/x/a", "/x/b", "/x/missing", "/x/a:9"}, WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range out.Parameters {
		got[aws.ToString(p.Name)] = aws.ToString(p.Value)
	}
	if len(got) != 2 || got["/x/a"] != "A" || got["/x/b"] != "B" {
		t.Errorf("Parameters = %v", got)
	}
	if strings.Join(out.InvalidParameters, ",") != "/x/missing,/x/a:9" {
		t.Errorf("InvalidParameters = %v", out.InvalidParameters)
	}
	names := make([]string, 11)
	for i := range names {
		names[i] = fmt.Sprint("/x/n", i)
	}
	if _, err := c.GetParameters(context.Background(), &ssm.GetParametersInput{Names: names}); code(err) != "ValidationException" {
		t.Errorf("11 names: %v", err)
	}
	if _, err := c.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String("/x/a")}); err != nil {
		t.Fatal(err)
	}
	var nf *types.ParameterNotFound
	if _, err := c.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String("/x/a")}); !errors.As(err, &nf) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := get(c, "/x/a", true); !errors.As(err, &nf) {
		t.Errorf("get after delete: %v", err)
	}
}

// nodePolicy is what a node's instance role gets: read its cluster's
// parameters, decrypt them only for those parameters.
const nodePolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"],
     "Resource": "arn:aws:ssm:*:*:parameter/wsdirect/prod/*"},
    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringLike": {"kms:EncryptionContext:PARAMETER_ARN": "arn:aws:ssm:*:*:parameter/wsdirect/prod/*"},
                   "StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}}}
  ]
}`

func TestAccessControl(t *testing.T) {
	s := start(t)
	admin := s.Client(AdminAccessKeyID, noRetry)
	cmk, err := s.CreateKey("alias/wsdirect")
	if err != nil {
		t.Fatal(err)
	}
	withCMK := func(in *ssm.PutParameterInput) { in.KeyId = aws.String("alias/wsdirect") }
	put(t, admin, "/wsdirect/prod/gossip-key", "prod-key", types.ParameterTypeSecureString, withCMK)
	put(t, admin, "/wsdirect/staging/gossip-key", "staging-key", types.ParameterTypeSecureString, withCMK)
	put(t, admin, "/wsdirect/prod/managed", "managed-key-value", types.ParameterTypeSecureString)
	if at, _ := s.Parameter("/wsdirect/prod/gossip-key"); at.KeyID != cmk.ID {
		t.Fatalf("KeyId alias not used: %+v vs %+v", at, cmk)
	}

	const nodeARN = "arn:aws:sts::123456789012:assumed-role/wsdirect-node/i-0123"
	s.SetPrincipal("ASIANODE", Principal{ARN: nodeARN, Policy: MustParsePolicy(nodePolicy)})
	s.SetPrincipal("ASIANOKMS", Principal{ARN: "arn:aws:sts::123456789012:assumed-role/nokms/i-1", Policy: MustParsePolicy(`{
	  "Version": "2012-10-17",
	  "Statement": {"Effect": "Allow", "Action": "ssm:GetParameter*", "Resource": "*"}}`)})
	s.SetPrincipal("ASIADENY", Principal{ARN: "arn:aws:sts::123456789012:assumed-role/deny/i-2", Policy: MustParsePolicy(`{
	  "Version": "2012-10-17",
	  "Statement": [{"Effect": "Allow", "Action": "ssm:*", "Resource": "*"},
	                {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}]}`)})
	node, noKMS, deny := s.Client("ASIANODE", noRetry), s.Client("ASIANOKMS", noRetry), s.Client("ASIADENY", noRetry)

	if p, err := get(node, "/wsdirect/prod/gossip-key", true); err != nil || aws.ToString(p.Value) != "prod-key" {
		t.Fatalf("node reads its own parameter: %v", err)
	}
	var denied *types.AccessDeniedException
	for _, name := range []string{"/wsdirect/staging/gossip-key", "/wsdirect/staging/does-not-exist"} {
		_, err := get(node, name, true)
		if !errors.As(err, &denied) {
			t.Fatalf("node reads %s: %v, want AccessDeniedException", name, err)
		}
		if msg := err.Error(); !strings.Contains(msg, nodeARN) || !strings.Contains(msg, "ssm:GetParameter") {
			t.Errorf("denial does not name the principal and action: %s", msg)
		}
	}
	// One denied name denies the whole GetParameters call.
	if _, err := node.GetParameters(context.Background(), &ssm.GetParametersInput{
		Names: []string{"/wsdirect/prod/gossip-key", "/wsdirect/staging/gossip-key"}}); !errors.As(err, &denied) {
		t.Errorf("GetParameters across paths: %v", err)
	}
	if _, err := node.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/wsdirect/prod/gossip-key"),
		Value: aws.String("mine"), Overwrite: aws.Bool(true)}); !errors.As(err, &denied) {
		t.Errorf("node overwrites a secret: %v", err)
	}

	// Without kms:Decrypt the customer key's ciphertext stays closed, but
	// the managed key's policy lets the account decrypt through SSM.
	if _, err := get(noKMS, "/wsdirect/prod/gossip-key", true); !errors.As(err, &denied) || !strings.Contains(err.Error(), "kms:Decrypt") {
		t.Errorf("decrypt without kms:Decrypt: %v", err)
	}
	if p, err := get(noKMS, "/wsdirect/prod/gossip-key", false); err != nil || aws.ToString(p.Value) == "prod-key" {
		t.Errorf("without WithDecryption: %v, %v; want the ciphertext", p, err)
	}
	if p, err := get(noKMS, "/wsdirect/prod/managed", true); err != nil || aws.ToString(p.Value) != "managed-key-value" {
		t.Errorf("managed key without kms:Decrypt: %v", err)
	}
	// An explicit Deny beats even the managed key.
	if _, err := get(deny, "/wsdirect/prod/managed", true); !errors.As(err, &denied) {
		t.Errorf("explicit deny of kms:Decrypt: %v", err)
	}
	// The encryption-context condition limits decryption to the path.
	s.SetPrincipal("ASIAWIDE", Principal{ARN: "arn:aws:sts::123456789012:assumed-role/wide/i-3", Policy: MustParsePolicy(`{
	  "Version": "2012-10-17",
	  "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"},
	    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
	     "Condition": {"StringLike": {"kms:EncryptionContext:PARAMETER_ARN": "arn:aws:ssm:*:*:parameter/wsdirect/prod/*"}}}]}`)})
	wide := s.Client("ASIAWIDE", noRetry)
	if _, err := get(wide, "/wsdirect/prod/gossip-key", true); err != nil {
		t.Errorf("decrypt in the path: %v", err)
	}
	if _, err := get(wide, "/wsdirect/staging/gossip-key", true); !errors.As(err, &denied) {
		t.Errorf("decrypt outside the path: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	s := start(t, func(c *Config) {
		c.Authenticate = func(id string) (Principal, bool) {
			return Principal{ARN: "arn:aws:iam::123456789012:user/" + id}, id == "AKIAKNOWN"
		}
	})
	put(t, s.Client("AKIAKNOWN", noRetry), "/k", "v", types.ParameterTypeString)
	if _, err := get(s.Client("AKIASTRANGER", noRetry), "/k", false); code(err) != "UnrecognizedClientException" {
		t.Errorf("unknown key: %v", err)
	}
	// Unsigned requests are refused before anything else.
	req, _ := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader(`{"Name":"/k"}`))
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}

func TestWireErrors(t *testing.T) {
	s := start(t)
	do := func(target, ctype, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/ssm/aws4_request")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
	}
	for _, tc := range []struct{ target, ctype, body, code string }{
		{"AmazonSSM.DescribeParameters", "application/x-amz-json-1.1", `{}`, "UnknownOperationException"},
		{"GetParameter", "application/x-amz-json-1.1", `{}`, "UnknownOperationException"},
		{"AmazonSSM.GetParameter", "application/json", `{"Name":"/a"}`, "SerializationException"},
		{"AmazonSSM.GetParameter", "application/x-amz-json-1.1", `{"Name":`, "SerializationException"},
		{"AmazonSSM.GetParameter", "application/x-amz-json-1.1", `{"Name":"/a","Bogus":1}`, "SerializationException"},
		{"AmazonSSM.GetParameter", "application/x-amz-json-1.1", `{}`, "ValidationException"},
	} {
		if status, got := do(tc.target, tc.ctype, tc.body); got != tc.code || status != 400 {
			t.Errorf("%s %s %s: %d %s, want 400 %s", tc.target, tc.ctype, tc.body, status, got, tc.code)
		}
	}
}

func TestFailNextRetried(t *testing.T) {
	s := start(t)
	c := s.Client(AdminAccessKeyID) // standard retryer
	put(t, c, "/r", "v", types.ParameterTypeString)
	s.FailNext("GetParameter", "ThrottlingException", 2)
	if p, err := get(c, "/r", false); err != nil || aws.ToString(p.Value) != "v" {
		t.Fatalf("after two throttles: %v", err)
	}
	if n := s.CallCount("GetParameter"); n != 3 {
		t.Errorf("GetParameter calls = %d, want 3 (two throttled, retried)", n)
	}
	s.FailNext("GetParameter", "InternalServerError", 1)
	if _, err := get(s.Client(AdminAccessKeyID, noRetry), "/r", false); code(err) != "InternalServerError" {
		t.Errorf("injected 500: %v", err)
	}
	calls := s.Calls()
	if last := calls[len(calls)-1]; last.ErrorCode != "InternalServerError" || last.Names[0] != "/r" || last.AccessKeyID != AdminAccessKeyID {
		t.Errorf("last call = %+v", last)
	}
}

// TestConcurrent runs writers and readers at once (go test -race).
func TestConcurrent(t *testing.T) {
	s := start(t)
	c := s.Client(AdminAccessKeyID)
	put(t, c, "/c/k", "0", types.ParameterTypeSecureString)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := c.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/c/k"),
					Value: aws.String(fmt.Sprint(w, "-", i)), Overwrite: aws.Bool(true)}); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := get(c, "/c/k", true); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p, _ := s.Parameter("/c/k"); p.Version != 81 {
		t.Errorf("version = %d, want 81", p.Version)
	}
}
