package ec2sim

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config tunes the emulator. Start from DefaultConfig and change what a test needs: New and
// NewServer use it as given and refuse a missing or out-of-range field, naming it.
type Config struct {
	// Region is reported in availability zones, DNS names and ARNs. Default "us-east-1".
	Region string

	// Seed seeds every pseudo-random choice (resource IDs, IP picking, random faults), so that
	// a run with the same seed and the same call sequence gives the same answers. Default 1.
	Seed int64

	// PendingDescribes is how many DescribeInstances calls see a new instance as "pending"
	// before it turns "running". Every DescribeInstances call ages every pending instance, even
	// when the call's filters hide it, so a caller filtering on state=running still progresses.
	// 0 makes an instance "running" from the first describe on (RunInstances itself always
	// answers "pending", like AWS). Ignored when Lifecycle is set. Default 1.
	PendingDescribes int

	// ShutdownDescribes is how many DescribeInstances calls see an instance that
	// TerminateInstances (StopInstances) acted on as "shutting-down" ("stopping") before it turns
	// "terminated" ("stopped"). Until then it keeps its interfaces and addresses, as on EC2 and
	// as under a Lifecycle. Describes age these instances the way they age pending ones. 0 makes
	// the first describe after the call show the end state (the call itself always answers
	// "shutting-down" or "stopping", like AWS). Ignored when Lifecycle is set. Default 1.
	ShutdownDescribes int

	// NotFoundAfterCreate models EC2's eventual consistency: this many calls naming a
	// just-created instance (DescribeInstances, DescribeInstanceAttribute,
	// ModifyInstanceAttribute, AssociateAddress with InstanceId) answer
	// InvalidInstanceID.NotFound, and DescribeInstances calls without IDs leave it out (each such
	// call also counts). 0 = consistent at once. Default 0.
	NotFoundAfterCreate int

	// ThrottleRate is the probability in [0,1] that any call answers RequestLimitExceeded
	// (HTTP 503). Drawn from the seeded generator. 0 = never. Default 0.
	ThrottleRate float64

	// ElasticIPLimit caps how many Elastic IPs may be allocated at once; AllocateAddress beyond
	// it answers AddressLimitExceeded. AWS's default quota is 5. 0 means no limit. Default 0.
	ElasticIPLimit int

	// TerminatedVisibleFor is how long a terminated instance stays visible to
	// DescribeInstances (AWS keeps them about an hour). Default 1h.
	TerminatedVisibleFor time.Duration

	// AccountID is the owner ID in responses and ARNs: 12 digits. Default "123456789012".
	AccountID string

	// PublicPools are the IPv4 ranges auto-assigned public IPs and Elastic IPs come from (the
	// network and broadcast addresses of each are skipped). Default the documentation ranges
	// 198.51.100.0/24 and 203.0.113.0/24, which nothing on the test machine answers; the local
	// cloud uses loopback ranges it serves itself.
	PublicPools []netip.Prefix

	// DefaultVPCCIDR is the default VPC (vpc-00000001). Its default subnets subnet-00000001
	// (zone a) and subnet-00000002 (zone b) are the /24s at offsets 1 and 2 inside it, and its
	// groups are sg-00000001 ("default") and sg-00000002 ("wsdirect"). An IPv4 /16 to /22.
	// Default 10.0.0.0/16 (subnets 10.0.1.0/24 and 10.0.2.0/24).
	DefaultVPCCIDR netip.Prefix

	// AssignAnswersAll makes AssignPrivateIpAddresses answer with every private IPv4 address of
	// the interface, primary included, instead of only the addresses it assigned, as some EC2
	// implementations other than AWS do. false = AWS's answer. Default false.
	AssignAnswersAll bool

	// LaunchIgnoresSecondaryIPs makes RunInstances launch every interface with its primary
	// address only, ignoring SecondaryPrivateIpAddressCount and the non-primary
	// PrivateIpAddresses.N, as an EC2 implementation without secondary-address support would.
	// false = AWS's behaviour. Default false.
	LaunchIgnoresSecondaryIPs bool

	// Lifecycle, when set, owns the state changes that take time on EC2 (booting, shutting
	// down, stopping): see Lifecycle. nil = DescribeInstances calls drive them
	// (PendingDescribes, ShutdownDescribes). Default nil.
	Lifecycle Lifecycle

	// Logf, when set, receives one line per call (action, outcome). nil = silent. Default nil.
	Logf func(format string, args ...any)
}

// DefaultConfig returns the configuration described on each Config field.
func DefaultConfig() Config {
	return Config{
		Region:                    "us-east-1",
		Seed:                      1,
		PendingDescribes:          1,
		ShutdownDescribes:         1,
		NotFoundAfterCreate:       0,
		ThrottleRate:              0,
		AssignAnswersAll:          false,
		LaunchIgnoresSecondaryIPs: false,
		ElasticIPLimit:            0,
		TerminatedVisibleFor:      time.Hour,
		AccountID:                 "123456789012",
		DefaultVPCCIDR:            netip.MustParsePrefix("10.0.0.0/16"),
		PublicPools: []netip.Prefix{
			netip.MustParsePrefix("198.51.100.0/24"),
			netip.MustParsePrefix("203.0.113.0/24"),
		},
	}
}

// validate reports every field out of range, joined into one error.
func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ec2sim: "+format, args...)) }
	if c.Region == "" {
		add("Config.Region is empty (DefaultConfig uses %q)", "us-east-1")
	}
	if len(c.AccountID) != 12 || !isDigits(c.AccountID) {
		add("Config.AccountID %q must be 12 digits", c.AccountID)
	}
	if c.PendingDescribes < 0 {
		add("Config.PendingDescribes must not be negative, got %d", c.PendingDescribes)
	}
	if c.ShutdownDescribes < 0 {
		add("Config.ShutdownDescribes must not be negative, got %d", c.ShutdownDescribes)
	}
	if c.NotFoundAfterCreate < 0 {
		add("Config.NotFoundAfterCreate must not be negative, got %d", c.NotFoundAfterCreate)
	}
	if c.ThrottleRate < 0 || c.ThrottleRate > 1 {
		add("Config.ThrottleRate must be in [0,1], got %v", c.ThrottleRate)
	}
	if c.ElasticIPLimit < 0 {
		add("Config.ElasticIPLimit must not be negative, got %d", c.ElasticIPLimit)
	}
	if c.TerminatedVisibleFor <= 0 {
		add("Config.TerminatedVisibleFor must be positive, got %v", c.TerminatedVisibleFor)
	}
	if p := c.DefaultVPCCIDR; !p.IsValid() || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 22 || p.Masked() != p {
		add("Config.DefaultVPCCIDR %v must be an IPv4 network address with a /16 to /22 prefix", p)
	}
	if len(c.PublicPools) == 0 {
		add("Config.PublicPools is empty: public and Elastic IPs need a range to come from")
	}
	for i, p := range c.PublicPools {
		if !p.IsValid() || !p.Addr().Is4() || p.Bits() > 30 {
			add("Config.PublicPools[%d] %v must be an IPv4 prefix of /30 or wider", i, p)
			continue
		}
		if c.DefaultVPCCIDR.IsValid() && c.DefaultVPCCIDR.Overlaps(p) {
			add("Config.PublicPools[%d] %v overlaps Config.DefaultVPCCIDR %v", i, p, c.DefaultVPCCIDR)
		}
		for _, q := range c.PublicPools[:i] {
			if q.IsValid() && q.Overlaps(p) {
				add("Config.PublicPools[%d] %v overlaps %v", i, p, q)
			}
		}
	}
	return errors.Join(errs...)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// Lifecycle lets an owner carry out the instance state changes that take time on EC2 (the
// local cloud boots and shuts down real processes). With Config.Lifecycle set:
//
//   - RunInstances and StartInstances leave an instance "pending" and call Booting; it turns
//     "running" when the owner calls Server.InstanceBooted.
//   - TerminateInstances and StopInstances move it to "shutting-down" or "stopping" and call
//     ShuttingDown; it turns "terminated" or "stopped" when the owner calls
//     Server.InstanceShutDown. Until then it keeps its addresses, as on EC2.
//   - NetworkChanged follows every call that may have changed which public address maps to
//     which private one (launch, stop, start, terminate, Elastic IP association, private IP
//     assignment).
//
// The methods run with the server's lock held, in the order the changes happen: they must
// return at once and must not call the Server (queue the work instead).
type Lifecycle interface {
	Booting(Instance)
	ShuttingDown(Instance)
	NetworkChanged()
}
