package cluster

import (
	"fmt"
	"log/slog"
	"time"
)

// CountMode selects how members share their volatile connection count.
type CountMode int

const (
	// CountsUserEvents publishes counts as serf user events (the default). A
	// count change costs one small gossip broadcast and leaves the member's
	// incarnation alone.
	CountsUserEvents CountMode = iota
	// CountsTags publishes counts as a serf tag. Every change bumps the
	// member's incarnation and re-broadcasts all its tags. Kept for the
	// side-by-side freshness benchmark that justified CountsUserEvents.
	CountsTags
)

func (m CountMode) String() string {
	switch m {
	case CountsUserEvents:
		return "user-events"
	case CountsTags:
		return "tags"
	default:
		return "unknown"
	}
}

// Config configures a Cluster member. Start from DefaultConfig (LAN timings)
// or LocalConfig (loopback tests) and fill in the identity fields; Create
// rejects invalid fields.
type Config struct {
	// Name is the member's unique name; for nodes it is also the token
	// audience. Required, at most MaxNameLen bytes.
	Name string

	// Role is RoleNode or RoleAuth. Required; DefaultConfig sets RoleNode.
	Role Role

	// BindAddr and BindPort are where gossip (UDP and TCP) listens. An
	// empty BindAddr means every IPv4 interface (0.0.0.0), as an empty host
	// does for net.Listen; BindPort 0 picks a free port. GossipAddr reports
	// the address bound.
	BindAddr string
	BindPort int

	// AdvertiseAddr and AdvertisePort are the gossip address other members
	// use to reach this one, when it differs from the bind address (NAT, or
	// binding 0.0.0.0). Empty/0 means derive from the bind address.
	AdvertiseAddr string
	AdvertisePort int

	// PublicAddr is the address clients dial to reach this node's
	// WebSockets (an IP or host name), and WSPort its port. Required for
	// RoleNode, ignored for RoleAuth.
	PublicAddr string
	WSPort     int

	// WSScheme is how clients reach those WebSockets: "wss" (TLS on the
	// node or in front of it) or "ws" (plain text: loopback and developer
	// machines). Required for RoleNode, ignored for RoleAuth. Auth hands
	// it out as part of the node's URL.
	WSScheme string

	// Cap is the node's connection cap. Required (> 0) for RoleNode.
	Cap int

	// Zone is an optional placement hint, e.g. an availability zone; empty
	// means none.
	Zone string

	// Draining is the initial draining flag.
	Draining bool

	// NotReady is the initial not-ready flag: the member is in the cluster
	// but takes no assignments until SetReady(true), e.g. while it has no
	// TLS certificate yet. false (the default) means ready.
	NotReady bool

	// SecretKey is the gossip encryption key (AES-256, 32 bytes, as
	// written by `wsdirect-auth keygen` and read by LoadKeyFile). Required
	// unless Dev is set.
	SecretKey []byte

	// ExtraKeys are further gossip keys accepted from other members but
	// never used to send, for a key rotation in progress (see SetKeys).
	// nil: only SecretKey.
	ExtraKeys [][]byte

	// Dev allows running without a gossip key (unencrypted gossip) and with
	// a 16 or 24 byte key. Never use it outside a developer machine.
	Dev bool

	// Logger receives serf and memberlist logs. Nil means slog.Default().
	Logger *slog.Logger

	// CountMode is how connection counts are shared: CountsUserEvents
	// (DefaultConfig; see the package comment for why) or CountsTags.
	CountMode CountMode

	// CountInterval is the minimum time between two count publications:
	// SetConns only records the value, and a publisher goroutine coalesces
	// changes into at most one broadcast per interval. Must be > 0.
	CountInterval time.Duration

	// CountRefresh re-publishes the count when nothing was published for
	// this long (checked every CountRefresh/2), so members that joined late
	// or missed an event learn it. CountsUserEvents only. Must be > 0.
	CountRefresh time.Duration

	// EventBuffer is how many recent user-event Lamport times serf keeps
	// for de-duplication; events older than that window are dropped as
	// stale. Each member publishes at most 1/CountInterval events per
	// second, so the window must cover cluster-size * 4 * a few seconds.
	// Must be > 0.
	EventBuffer int

	// Gossip and failure-detection timings, passed to memberlist. See
	// DefaultConfig for the numbers and the failure-detection budget. All
	// must be > 0, except that 0 is memberlist's own setting for three of
	// them: IndirectChecks 0 asks no other member to probe a member that
	// failed a direct probe, PushPullInterval 0 turns periodic full state
	// syncs off, and GossipToTheDeadTime 0 stops gossiping to a dead
	// member at once.
	GossipInterval          time.Duration
	GossipNodes             int
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	IndirectChecks          int
	RetransmitMult          int
	PushPullInterval        time.Duration
	TCPTimeout              time.Duration
	GossipToTheDeadTime     time.Duration

	// Serf timings.
	//
	// ReapInterval is how often failed and left members are checked for
	// reaping; ReconnectInterval how often serf tries to reconnect to a
	// failed member; ReconnectTimeout how long a failed member is kept
	// before it is reaped; TombstoneTimeout the same for left members;
	// LeavePropagateDelay how long Leave waits for the leave message to
	// spread; BroadcastTimeout how long SetTags and Leave wait for their
	// broadcast to be sent. All must be > 0, except LeavePropagateDelay,
	// for which 0 means Leave does not wait.
	ReapInterval        time.Duration
	ReconnectInterval   time.Duration
	ReconnectTimeout    time.Duration
	TombstoneTimeout    time.Duration
	LeavePropagateDelay time.Duration
	BroadcastTimeout    time.Duration
}

// DefaultConfig returns timings for a LAN (one VPC). Failure detection is
// tuned so that a crashed node leaves Nodes() within 5 s in clusters of up
// to ~10 members:
//
//	detection  ≈ time until some member probes it (≤ ~ProbeInterval = 0.8 s)
//	           + direct and indirect probe round (ProbeInterval = 0.8 s)
//	suspicion  = SuspicionMult * max(1, log10(n)) * ProbeInterval
//	           = 1.6 s for n ≤ 10, 3.2 s for n = 100
//	dead msg   ≈ a few GossipIntervals (200 ms)
//
// i.e. ≈ 3–4 s for n ≤ 10 (BenchmarkFailedNodeRemovalLAN, 10 members on
// loopback) and ≈ 5–6 s for 100 members, since the suspicion term grows with
// log10(n). memberlist's LAN default (ProbeInterval 1 s, SuspicionMult 4,
// max multiplier 6) would take 4–24 s. SuspicionMult 2 means no Lifeguard
// confirmations are awaited (k = SuspicionMult-2 = 0); a wrongly suspected
// member still has the whole suspicion window to refute.
func DefaultConfig() *Config {
	return &Config{
		Role:     RoleNode,  // most members are nodes
		BindAddr: "0.0.0.0", // all interfaces
		BindPort: 7946,      // serf's customary LAN port
		WSScheme: "wss",     // every listener that leaves the host speaks TLS

		CountMode:     CountsUserEvents,       // see package comment
		CountInterval: 250 * time.Millisecond, // ≤ 4 count events/s per member
		CountRefresh:  5 * time.Second,        // late joiners learn counts within 5 s
		EventBuffer:   4096,                   // ≈ 10 s of events from 100 busy members

		GossipInterval:          200 * time.Millisecond, // memberlist LAN default
		GossipNodes:             3,                      // memberlist LAN default
		ProbeInterval:           800 * time.Millisecond, // LAN default 1 s; faster failure detection
		ProbeTimeout:            400 * time.Millisecond, // LAN default 500 ms; VPC RTT is < 1 ms
		SuspicionMult:           2,                      // 1.6 s suspicion for n ≤ 10 (LAN default 4)
		SuspicionMaxTimeoutMult: 2,                      // unused with k = 0; bounded anyway (LAN default 6)
		IndirectChecks:          3,                      // memberlist LAN default
		RetransmitMult:          4,                      // memberlist LAN default
		PushPullInterval:        30 * time.Second,       // memberlist LAN default
		TCPTimeout:              10 * time.Second,       // memberlist LAN default
		GossipToTheDeadTime:     30 * time.Second,       // memberlist LAN default

		ReapInterval:        15 * time.Second, // serf default
		ReconnectInterval:   30 * time.Second, // serf default
		ReconnectTimeout:    30 * time.Minute, // replaced instances never come back; serf's 24 h only bloats the member list
		TombstoneTimeout:    1 * time.Hour,    // left members are kept briefly so late gossip cannot resurrect them
		LeavePropagateDelay: 1 * time.Second,  // serf default
		BroadcastTimeout:    5 * time.Second,  // serf default
	}
}

// LocalConfig returns shortened timings for clusters on loopback (tests):
// like memberlist.DefaultLocalConfig, with faster gossip and probing, and
// failed/left members reaped after seconds. A killed member is declared
// failed in about 0.4 s (first probe) + 0.4 s (probe round) + 1.2–2.4 s
// (suspicion for n ≤ 10: SuspicionMult 3, one Lifeguard confirmation
// shortens the 2.4 s maximum to 1.2 s) ≈ 2–3 s.
func LocalConfig() *Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0    // pick a free port
	c.WSScheme = "ws" // loopback: plain text is allowed
	c.CountRefresh = 1 * time.Second
	c.EventBuffer = 1024

	c.GossipInterval = 50 * time.Millisecond // memberlist.DefaultLocalConfig has 100 ms
	c.GossipNodes = 3
	c.ProbeInterval = 400 * time.Millisecond
	c.ProbeTimeout = 300 * time.Millisecond // not less: -race on a loaded 2-core box delays acks
	c.SuspicionMult = 3
	c.SuspicionMaxTimeoutMult = 2
	c.IndirectChecks = 1
	c.RetransmitMult = 4 // as LAN: at 3, about 1% of count changes missed a member until the next refresh
	c.PushPullInterval = 5 * time.Second
	c.TCPTimeout = 3 * time.Second // push/pull and join; generous for -race on loaded CI
	c.GossipToTheDeadTime = 5 * time.Second

	c.ReapInterval = 1 * time.Second
	c.ReconnectInterval = 1 * time.Second
	c.ReconnectTimeout = 5 * time.Second
	c.TombstoneTimeout = 5 * time.Second
	c.LeavePropagateDelay = 200 * time.Millisecond
	c.BroadcastTimeout = 2 * time.Second
	return c
}

// validate reports the first timing or mode in c that is out of range. The
// identity fields (Name, Role, addresses, Cap) and the key are checked by
// Create with the facts they become.
func (c *Config) validate() error {
	if c.BindPort < 0 || c.BindPort > 65535 {
		return fmt.Errorf("cluster: BindPort %d out of range 0-65535", c.BindPort)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return fmt.Errorf("cluster: AdvertisePort %d out of range 0-65535", c.AdvertisePort)
	}
	if c.CountMode != CountsUserEvents && c.CountMode != CountsTags {
		return fmt.Errorf("cluster: CountMode %d is not CountsUserEvents or CountsTags", c.CountMode)
	}
	positive := []struct {
		name string
		v    time.Duration
	}{
		{"CountInterval", c.CountInterval}, {"CountRefresh", c.CountRefresh},
		{"GossipInterval", c.GossipInterval}, {"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout}, {"TCPTimeout", c.TCPTimeout},
		{"ReapInterval", c.ReapInterval}, {"ReconnectInterval", c.ReconnectInterval},
		{"ReconnectTimeout", c.ReconnectTimeout}, {"TombstoneTimeout", c.TombstoneTimeout},
		{"BroadcastTimeout", c.BroadcastTimeout},
	}
	for _, f := range positive {
		if f.v <= 0 {
			return fmt.Errorf("cluster: %s must be > 0, got %s", f.name, f.v)
		}
	}
	nonNegative := []struct {
		name string
		v    time.Duration
	}{
		{"PushPullInterval", c.PushPullInterval}, {"GossipToTheDeadTime", c.GossipToTheDeadTime},
		{"LeavePropagateDelay", c.LeavePropagateDelay},
	}
	for _, f := range nonNegative {
		if f.v < 0 {
			return fmt.Errorf("cluster: %s must not be negative, got %s", f.name, f.v)
		}
	}
	counts := []struct {
		name string
		v    int
	}{
		{"EventBuffer", c.EventBuffer}, {"GossipNodes", c.GossipNodes}, {"SuspicionMult", c.SuspicionMult},
		{"SuspicionMaxTimeoutMult", c.SuspicionMaxTimeoutMult}, {"RetransmitMult", c.RetransmitMult},
	}
	for _, f := range counts {
		if f.v <= 0 {
			return fmt.Errorf("cluster: %s must be > 0, got %d", f.name, f.v)
		}
	}
	if c.IndirectChecks < 0 {
		return fmt.Errorf("cluster: IndirectChecks must not be negative, got %d", c.IndirectChecks)
	}
	return nil
}
