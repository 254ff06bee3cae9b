package ec2sim

import "time"

// Config tunes the emulator. Start from DefaultConfig and change what a test needs.
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
	// answers "pending", like AWS). Default 1.
	PendingDescribes int

	// NotFoundAfterCreate models EC2's eventual consistency: this many calls naming a
	// just-created instance (DescribeInstances, DescribeInstanceAttribute,
	// ModifyInstanceAttribute, AssociateAddress with InstanceId) answer
	// InvalidInstanceID.NotFound, and DescribeInstances calls without IDs leave it out (each such
	// call also counts). Default 0.
	NotFoundAfterCreate int

	// ThrottleRate is the probability in [0,1] that any call answers RequestLimitExceeded
	// (HTTP 503). Drawn from the seeded generator. Default 0.
	ThrottleRate float64

	// ElasticIPLimit caps how many Elastic IPs may be allocated at once; AllocateAddress beyond
	// it answers AddressLimitExceeded. AWS's default quota is 5. 0 means no limit. Default 0.
	ElasticIPLimit int

	// TerminatedVisibleFor is how long a terminated instance stays visible to
	// DescribeInstances (AWS keeps them about an hour). Default 1h.
	TerminatedVisibleFor time.Duration

	// AccountID is the owner ID in responses and ARNs. Default "123456789012".
	AccountID string

	// Logf, when set, receives one line per call (action, outcome). Default nil (silent).
	Logf func(format string, args ...any)
}

// DefaultConfig returns the configuration described on each Config field.
func DefaultConfig() Config {
	return Config{
		Region:               "us-east-1",
		Seed:                 1,
		PendingDescribes:     1,
		NotFoundAfterCreate:  0,
		ThrottleRate:         0,
		ElasticIPLimit:       0,
		TerminatedVisibleFor: time.Hour,
		AccountID:            "123456789012",
	}
}

// withDefaults fills zero values that have no meaningful zero (region, account, TTL).
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Region == "" {
		c.Region = d.Region
	}
	if c.AccountID == "" {
		c.AccountID = d.AccountID
	}
	if c.TerminatedVisibleFor <= 0 {
		c.TerminatedVisibleFor = d.TerminatedVisibleFor
	}
	if c.PendingDescribes < 0 {
		c.PendingDescribes = 0
	}
	if c.NotFoundAfterCreate < 0 {
		c.NotFoundAfterCreate = 0
	}
	if c.ThrottleRate < 0 {
		c.ThrottleRate = 0
	}
	if c.ThrottleRate > 1 {
		c.ThrottleRate = 1
	}
	return c
}
