package localcloud

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ssmsim"
)

// Config describes a local cloud. Start from DefaultConfig, set WorkDir, and change what you
// need: New uses it as given and refuses a missing or out-of-range field, naming it.
type Config struct {
	// WorkDir holds everything the local cloud writes: each instance's file system and console
	// log, the release it serves, and localcloud.json. It must be empty, missing (it is created,
	// mode 0700) or a directory an earlier local cloud used (it holds the marker file
	// .wsdirect-localcloud); the instances/ and release/ of an earlier run are removed.
	// Required.
	WorkDir string

	// Listen is the loopback address of the local cloud's one HTTP endpoint: the AWS APIs
	// (routed by the SigV4 service name), the release server under /releases/ and the control
	// API under /localcloud/v1/. Port 0 picks a free port. Default "127.0.0.1:4599".
	Listen string

	// Region of the emulated account; availability zones are Region+"a" and Region+"b".
	// Default "us-east-1".
	Region string

	// VPCCIDR is the default VPC; it must lie inside 127.0.0.0/8 so that instances' private
	// addresses are loopback addresses of this machine. Its subnets are the /24s at offsets 1
	// (subnet-00000001, zone a), 2 (subnet-00000002, zone b), 3 (subnet-0123456789abcdef0,
	// zone a) and 4 (subnet-0fedcba9876543210, zone b); the last two carry the placeholder IDs
	// the examples use, so those apply unchanged. Default 127.10.0.0/16.
	VPCCIDR netip.Prefix

	// PublicCIDR is where auto-assigned public IPs and Elastic IPs come from; inside
	// 127.0.0.0/8 and apart from VPCCIDR. Each public address forwards to its private one
	// (1:1 NAT, see the package comment). Default 127.20.0.0/16.
	PublicCIDR netip.Prefix

	// ElasticIPLimit is the account's Elastic IP quota. 0 = no limit. Default 5, AWS's
	// default quota, so a configuration that needs a quota raise fails here as on AWS.
	ElasticIPLimit int

	// Seed seeds the emulator's IDs and address picks (see ec2sim.Config.Seed). Default 1.
	Seed int64

	// BootDelay is how long an instance stays pending before it runs (EC2 takes tens of
	// seconds). 0 = at once. Default 1s.
	BootDelay time.Duration

	// MaxStopTimeout caps a unit's TimeoutStopSec: how long a stop or terminate waits after
	// SIGTERM before it SIGKILLs what is left (systemd's default is 90s, which is also how long
	// EC2 lets a shutdown take before it powers off). Must be positive. Default 90s.
	MaxStopTimeout time.Duration

	// ScanInterval is how often the 1:1 NAT looks for new listeners on private addresses, so a
	// process that starts listening is reachable at its public address within about this long.
	// Default 200ms.
	ScanInterval time.Duration

	// ReleaseBinaries maps a binary name (wsdirect-node, wsdirect-auth) to the file to publish
	// under goreleaser's archive name; empty = no release is served. Default empty.
	ReleaseBinaries map[string]string

	// ReleaseVersion names the published archives (<binary>_<version>_linux_<arch>.tar.gz).
	// Required when ReleaseBinaries is set. Default "0.0.0".
	ReleaseVersion string

	// ReleaseArch is the <arch> of the archive names. Default runtime.GOARCH.
	ReleaseArch string

	// Services adds AWS services beside EC2, STS and Parameter Store, by SigV4 signing name:
	// requests signed for that service go to the handler, and every instance process (and Env)
	// gets AWS_ENDPOINT_URL_<NAME> pointing at the local cloud. "ssm" replaces the built-in
	// Parameter Store. nil = no others.
	Services map[string]http.Handler

	// RolePolicies are IAM policy documents (JSON) of instance profiles' roles, by profile
	// name, which the local cloud's Parameter Store enforces on requests signed with the
	// role's credentials (from the instance's IMDS): AccessDeniedException for a parameter or
	// a kms:Decrypt the policy does not allow. A profile not listed may do everything: the
	// local cloud has no IAM of its own. SetRolePolicy changes them while running. nil = none.
	RolePolicies map[string]string

	// Logger receives the local cloud's own log lines. nil = slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the configuration described on each Config field; WorkDir is left
// empty and must be set.
func DefaultConfig() Config {
	return Config{
		Listen:         "127.0.0.1:4599",
		Region:         "us-east-1",
		VPCCIDR:        netip.MustParsePrefix("127.10.0.0/16"),
		PublicCIDR:     netip.MustParsePrefix("127.20.0.0/16"),
		ElasticIPLimit: 5,
		Seed:           1,
		BootDelay:      time.Second,
		MaxStopTimeout: 90 * time.Second,
		ScanInterval:   200 * time.Millisecond,
		ReleaseVersion: "0.0.0",
		ReleaseArch:    runtime.GOARCH,
	}
}

var (
	loopback     = netip.MustParsePrefix("127.0.0.0/8")
	regionRe     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)
	versionRe    = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
	serviceRe    = regexp.MustCompile(`^[a-z][a-z0-9-]{1,30}$`)
	releaseBinRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
)

func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("localcloud: "+format, args...)) }
	if c.WorkDir == "" {
		add("Config.WorkDir is required")
	} else if !filepath.IsAbs(c.WorkDir) {
		add("Config.WorkDir %q must be an absolute path", c.WorkDir)
	}
	if ap, err := netip.ParseAddrPort(c.Listen); err != nil || !ap.Addr().IsLoopback() {
		add("Config.Listen %q must be a loopback ip:port", c.Listen)
	}
	if !regionRe.MatchString(c.Region) {
		add("Config.Region %q is not a region name like us-east-1", c.Region)
	}
	if p := c.VPCCIDR; !p.IsValid() || p.Bits() < 16 || p.Bits() > 21 || p.Masked() != p || !loopback.Contains(p.Addr()) {
		add("Config.VPCCIDR %v must be a /16 to /21 network inside 127.0.0.0/8", p)
	}
	if p := c.PublicCIDR; !p.IsValid() || p.Bits() < 16 || p.Bits() > 28 || p.Masked() != p || !loopback.Contains(p.Addr()) {
		add("Config.PublicCIDR %v must be a /16 to /28 network inside 127.0.0.0/8", p)
	} else if c.VPCCIDR.IsValid() && c.VPCCIDR.Overlaps(p) {
		add("Config.PublicCIDR %v overlaps Config.VPCCIDR %v", p, c.VPCCIDR)
	}
	if c.ElasticIPLimit < 0 {
		add("Config.ElasticIPLimit must not be negative, got %d", c.ElasticIPLimit)
	}
	if c.BootDelay < 0 {
		add("Config.BootDelay must not be negative, got %v", c.BootDelay)
	}
	if c.MaxStopTimeout <= 0 {
		add("Config.MaxStopTimeout must be positive, got %v", c.MaxStopTimeout)
	}
	if c.ScanInterval <= 0 {
		add("Config.ScanInterval must be positive, got %v", c.ScanInterval)
	}
	for name, path := range c.ReleaseBinaries {
		if !releaseBinRe.MatchString(name) {
			add("Config.ReleaseBinaries: %q is not a binary name", name)
		}
		if !filepath.IsAbs(path) {
			add("Config.ReleaseBinaries[%s] %q must be an absolute path", name, path)
		}
	}
	if len(c.ReleaseBinaries) > 0 && !versionRe.MatchString(c.ReleaseVersion) {
		add("Config.ReleaseVersion %q must be a version like 1.2.3 (no leading v)", c.ReleaseVersion)
	}
	if len(c.ReleaseBinaries) > 0 && c.ReleaseArch != "amd64" && c.ReleaseArch != "arm64" {
		add("Config.ReleaseArch %q must be amd64 or arm64", c.ReleaseArch)
	}
	for name, doc := range c.RolePolicies {
		if name == "" || strings.ContainsAny(name, "/ \t") {
			add("Config.RolePolicies: %q is not an instance profile name", name)
		} else if _, err := ssmsim.ParsePolicy([]byte(doc)); err != nil {
			add("Config.RolePolicies[%s]: %v", name, err)
		}
	}
	for name, h := range c.Services {
		switch {
		case !serviceRe.MatchString(name):
			add("Config.Services: %q is not a SigV4 signing name", name)
		case name == "ec2" || name == "sts":
			add("Config.Services: %q is served by the emulator already", name)
		case h == nil:
			add("Config.Services[%s] is nil", name)
		}
	}
	return errors.Join(errs...)
}
