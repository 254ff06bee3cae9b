package ssmsim

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config tunes the emulator. Start from DefaultConfig and change what a test
// needs; New validates every field.
type Config struct {
	// Region appears in ARNs and in the kms:ViaService condition key
	// (ssm.<region>.amazonaws.com). Default "us-east-1", ec2sim's region.
	Region string

	// AccountID appears in ARNs. Default "123456789012", ec2sim's account.
	AccountID string

	// Authenticate maps the SigV4 access key ID of a request to the
	// principal that signed it; false answers UnrecognizedClientException, as
	// AWS does for a key it does not know. Principals registered with
	// SetPrincipal are looked up first. Default nil: every signed request is
	// the account's administrator, allowed everything (the usual test set-up).
	Authenticate func(accessKeyID string) (Principal, bool)

	// MaxParameters is how many parameters the account may hold;
	// PutParameter of a new one beyond it answers ParameterLimitExceeded.
	// Default 10,000, AWS's standard-tier quota.
	MaxParameters int

	// Now is the clock of LastModifiedDate. Default nil: time.Now.
	Now func() time.Time

	// Logf, when set, receives one line per call (operation, outcome; never
	// a value). Default nil: silent.
	Logf func(format string, args ...any)
}

// DefaultConfig returns the configuration described on each Config field.
func DefaultConfig() Config {
	return Config{
		Region:        "us-east-1",
		AccountID:     "123456789012",
		MaxParameters: 10000,
	}
}

var (
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	accountPattern = regexp.MustCompile(`^\d{12}$`)
)

func (c Config) validate() error {
	var errs []error
	if !regionPattern.MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("ssmsim: Config.Region %q is not a region name like us-east-1", c.Region))
	}
	if !accountPattern.MatchString(c.AccountID) {
		errs = append(errs, fmt.Errorf("ssmsim: Config.AccountID %q must be 12 digits", c.AccountID))
	}
	if c.MaxParameters < 1 {
		errs = append(errs, fmt.Errorf("ssmsim: Config.MaxParameters must be at least 1, got %d", c.MaxParameters))
	}
	return errors.Join(errs...)
}
