// Package secret is where the commands get their secrets and where bearer
// secrets are compared.
//
// Read is the one place that turns a secret flag's value (a reference) into
// the secret. A reference is either a file path or an AWS Systems Manager
// Parameter Store parameter: Scheme followed by the parameter's name, as in
// ssm:///wsdirect/prod/gossip-key for the parameter /wsdirect/prod/gossip-key.
// Every secret flag of both commands (-signing-key, -gossip-key-file,
// -admin-token-file, -users, -tls-key) takes either, so operators on AWS keep
// secrets out of user data and files, and everyone else keeps using files.
//
// Parameters are read with the instance role's credentials through one SSM
// client per process, made on the first ssm:// reference. A secret must be a
// SecureString (encrypted with KMS); ReadPublic, for public material such as
// the auth service's public keys, also accepts String parameters.
//
// Errors name the flag and the file or parameter, never the secret.
package secret

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// Scheme starts a Parameter Store reference. What follows is the parameter
// name exactly as Parameter Store spells it (a hierarchy starts with '/'),
// optionally with a ":version" selector to pin one version.
const Scheme = "ssm://"

// IsParameter reports whether ref is a Parameter Store reference rather than
// a file path.
func IsParameter(ref string) bool { return strings.HasPrefix(ref, Scheme) }

// ParameterRef is the reference of the parameter name:
// ParameterRef("/wsdirect/prod/gossip-key") = "ssm:///wsdirect/prod/gossip-key".
func ParameterRef(name string) string { return Scheme + name }

// CheckRef checks a reference's syntax without reading anything, so a
// malformed parameter name is a usage error at start-up: files are checked
// when read, parameters against CheckParameterName. An empty ref is
// accepted (the flag is unset).
func CheckRef(flagName, ref string) error {
	if !IsParameter(ref) {
		return nil
	}
	if err := CheckParameterName(strings.TrimPrefix(ref, Scheme)); err != nil {
		return fmt.Errorf("%s: %w", flagName, err)
	}
	return nil
}

// GetParameterAPI is the part of the SSM API Read calls; *ssm.Client
// satisfies it.
type GetParameterAPI interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ GetParameterAPI = (*ssm.Client)(nil)

// Config configures a Reader. Start from DefaultConfig.
type Config struct {
	// Timeout bounds one parameter read, the SDK's retries included.
	// Default 30 s: room for the standard retryer to ride out throttling,
	// yet a boot against an unreachable endpoint fails (and systemd starts
	// the service again) instead of hanging.
	Timeout time.Duration

	// Client reads parameters. Default nil: on the first ssm:// reference
	// the Reader builds an SSM client from the default AWS configuration
	// (credentials from the environment or the instance role, the region
	// from AWS_REGION or instance metadata, the endpoint from
	// AWS_ENDPOINT_URL_SSM when set) and keeps it. A failed build is not
	// kept: the next read tries again.
	Client GetParameterAPI
}

// DefaultConfig returns the configuration described on each Config field.
func DefaultConfig() Config {
	return Config{Timeout: 30 * time.Second}
}

// Reader resolves secret references. It is safe for concurrent use.
type Reader struct {
	timeout time.Duration

	mu     sync.Mutex
	client GetParameterAPI
}

// New returns a Reader for c, or an error naming a bad field.
func New(c Config) (*Reader, error) {
	if c.Timeout <= 0 {
		return nil, fmt.Errorf("secret: Config.Timeout must be positive, got %v", c.Timeout)
	}
	return &Reader{timeout: c.Timeout, client: c.Client}, nil
}

// std is the process's Reader, behind the package-level Read.
var std = func() *Reader {
	r, err := New(DefaultConfig())
	if err != nil {
		panic(err) // DefaultConfig is valid; the tests check it
	}
	return r
}()

// Read returns the secret that ref points at, through the process's
// Reader. See Reader.Read.
func Read(flagName, ref string) (string, error) { return std.Read(flagName, ref) }

// ReadPublic returns the public material that ref points at, through the
// process's Reader. See Reader.ReadPublic.
func ReadPublic(flagName, ref string) (string, error) { return std.ReadPublic(flagName, ref) }

// Read returns the secret that ref points at, with surrounding whitespace
// (a trailing newline from echo or an editor) removed: the content of a
// file, or the decrypted value of a SecureString parameter. flagName
// ("-admin-token-file") and the file or parameter are named in every error,
// so the operator knows what to fix; the secret never is.
func (r *Reader) Read(flagName, ref string) (string, error) { return r.read(flagName, ref, true) }

// ReadPublic is Read for material that is not secret (public keys): a
// parameter may also be a String.
func (r *Reader) ReadPublic(flagName, ref string) (string, error) {
	return r.read(flagName, ref, false)
}

func (r *Reader) read(flagName, ref string, secure bool) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%s: no file or %s parameter given", flagName, Scheme)
	}
	if IsParameter(ref) {
		return r.readParameter(flagName, strings.TrimPrefix(ref, Scheme), secure)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", flagName, ref)
	}
	return s, nil
}

func (r *Reader) readParameter(flagName, name string, secure bool) (string, error) {
	if err := CheckParameterName(name); err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	c, err := r.ssmClient(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: SSM parameter %s: %w", flagName, name, err)
	}
	out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("%s: SSM parameter %s: %s: %w", flagName, name, explain(err), err)
	}
	p := out.Parameter
	if p == nil {
		return "", fmt.Errorf("%s: SSM parameter %s: the answer holds no parameter", flagName, name)
	}
	if secure && p.Type != ssmtypes.ParameterTypeSecureString {
		return "", fmt.Errorf("%s: SSM parameter %s is a %s; a secret must be a SecureString, encrypted with KMS (aws ssm put-parameter --type SecureString)", flagName, name, p.Type)
	}
	v := strings.TrimSpace(aws.ToString(p.Value))
	if v == "" {
		return "", fmt.Errorf("%s: SSM parameter %s is empty", flagName, name)
	}
	return v, nil
}

// explain says in words what the common Parameter Store errors mean for
// the operator; the SDK's error follows it.
func explain(err error) string {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		if errors.Is(err, context.DeadlineExceeded) {
			return "no answer in time"
		}
		return "read failed"
	}
	switch ae.ErrorCode() {
	case "ParameterNotFound":
		return "does not exist"
	case "ParameterVersionNotFound":
		return "has no such version"
	case "AccessDeniedException":
		return "access denied (the instance role needs ssm:GetParameter on it and kms:Decrypt on its key)"
	case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException":
		return "the AWS credentials were refused"
	}
	return "read failed"
}

// ssmClient returns the Reader's client, building it on first use.
func (r *Reader) ssmClient(ctx context.Context) (GetParameterAPI, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client != nil {
		return r.client, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithEC2IMDSRegion(), config.WithRetryMaxAttempts(5))
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration (the region comes from AWS_REGION or instance metadata): %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region configured (set AWS_REGION, or run on EC2 where the region comes from instance metadata)")
	}
	r.client = ssm.NewFromConfig(cfg)
	return r.client, nil
}

var (
	parameterNameChars = regexp.MustCompile(`^[a-zA-Z0-9_./-]+$`)
	selectorChars      = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,100}$`)
)

// CheckParameterName checks a parameter name (optionally with a ":version"
// or ":label" selector) against Parameter Store's rules, so a typo fails
// where it is made (Terraform plan, flag parsing) rather than at boot.
func CheckParameterName(name string) error {
	if strings.HasPrefix(name, "arn:") {
		return fmt.Errorf("SSM parameter %q: give the parameter's name, not its ARN (the region and account are the instance's)", name)
	}
	base, sel, hasSel := strings.Cut(name, ":")
	switch {
	case base == "":
		return errors.New("SSM parameter name is empty")
	case len(base) > 1011:
		return fmt.Errorf("SSM parameter name %.40q... is longer than 1011 characters", base)
	case !parameterNameChars.MatchString(base):
		return fmt.Errorf("SSM parameter name %q may hold only letters, digits, '.', '-', '_' and '/'", base)
	case strings.Contains(base, "/") && !strings.HasPrefix(base, "/"):
		return fmt.Errorf("SSM parameter name %q must start with '/' when it has a path (for a reference: %s/%s)", base, Scheme, base)
	case strings.HasSuffix(base, "/") || strings.Contains(base, "//"):
		return fmt.Errorf("SSM parameter name %q has an empty path segment", base)
	case strings.Count(base, "/") > 15:
		return fmt.Errorf("SSM parameter name %q is deeper than 15 levels", base)
	case hasSel && !selectorChars.MatchString(sel):
		return fmt.Errorf("SSM parameter %q: the selector after ':' must be a version number or a label", name)
	}
	if first := strings.ToLower(strings.TrimPrefix(base, "/")); strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return fmt.Errorf("SSM parameter name %q may not start with \"aws\" or \"ssm\"", base)
	}
	return nil
}

// Equal reports whether the presented secret got matches want, in time that
// depends on neither secret's content nor length: both are hashed with
// SHA-256 and the digests compared in constant time. An empty want never
// matches, so an unset secret cannot be met by an empty one.
func Equal(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
