package gossipcli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
)

// JoinConfig is the join policy. Start from DefaultJoinConfig (or
// Flags.JoinConfig).
type JoinConfig struct {
	// Addrs are gossip addresses to join, host[:port]; a missing port is
	// this member's gossip port. Empty = none.
	Addrs []string

	// Lookup, when set, finds more members on every attempt (EC2 tag
	// discovery); it returns IPs or host[:port] addresses. It may return
	// this member's own address. Nil = no lookup.
	Lookup func(context.Context) ([]string, error)

	// LookupName names Lookup in logs, e.g. "-join-ec2-tag k=v".
	LookupName string

	// LookupTimeout bounds one Lookup call.
	LookupTimeout time.Duration

	// MinBackoff is the wait after the first failed attempt; it doubles
	// after every further failure up to MaxBackoff. Each wait is jittered
	// down to half its length, so members started together spread out.
	MinBackoff, MaxBackoff time.Duration

	// Logger receives the attempts. Nil = slog.Default().
	Logger *slog.Logger
}

// DefaultJoinConfig returns the policy both commands use.
func DefaultJoinConfig() *JoinConfig {
	return &JoinConfig{
		LookupTimeout: 20 * time.Second, // DescribeInstances answers in well under a second; leaves room for SDK retries
		MinBackoff:    1 * time.Second,  // members started together usually find each other within a second or two
		MaxBackoff:    30 * time.Second, // a member alone waits at most this long to find a late peer; ≤ 2 log lines a minute
	}
}

func (c *JoinConfig) validate() error {
	switch {
	case c.LookupTimeout <= 0:
		return fmt.Errorf("gossipcli: JoinConfig.LookupTimeout must be > 0, got %s", c.LookupTimeout)
	case c.MinBackoff <= 0:
		return fmt.Errorf("gossipcli: JoinConfig.MinBackoff must be > 0, got %s", c.MinBackoff)
	case c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("gossipcli: JoinConfig.MaxBackoff (%s) must be >= MinBackoff (%s)", c.MaxBackoff, c.MinBackoff)
	}
	for _, a := range c.Addrs {
		if _, err := JoinAddr(a, DefaultPort); err != nil {
			return fmt.Errorf("gossipcli: JoinConfig.Addrs: %w", err)
		}
	}
	return nil
}

// Join brings cl into its cluster. Each attempt joins the Addrs and what
// Lookup finds (this member's own address left out). Join returns nil once
// a member answered, or once another member has joined cl (the others found
// it first); it returns ctx.Err() when ctx ends first. Nothing to join at
// all (no Addrs, no Lookup) is the first member of a new cluster: Join
// returns nil at once. Failed attempts are retried with backoff, so members
// may start in any order; run Join in its own goroutine.
func Join(ctx context.Context, cl *cluster.Cluster, c *JoinConfig) error {
	if c == nil {
		return errors.New("gossipcli: nil JoinConfig")
	}
	if err := c.validate(); err != nil {
		return err
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(c.Addrs) == 0 && c.Lookup == nil {
		log.Info("nothing to join; starting a new cluster")
		return nil
	}
	self := cl.GossipAddr()
	_, p, err := net.SplitHostPort(self)
	if err != nil {
		return fmt.Errorf("gossipcli: own gossip address %q: %w", self, err)
	}
	port, _ := strconv.Atoi(p)

	backoff := c.MinBackoff
	aloneLogged := false
	for attempt := 1; ; attempt++ {
		if joinedByOthers(cl) {
			log.Info("another member joined this one; stopping the join attempts", "members", len(cl.Members()))
			return nil
		}
		addrs := candidates(ctx, c, self, port, log)
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := jitter(backoff)
		if len(addrs) > 0 {
			log.Debug("joining", "attempt", attempt, "addrs", addrs)
			n, err := cl.Join(addrs)
			if err == nil && n > 0 {
				return nil // cluster logs "joined cluster"
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.Warn("no member answered; retrying", "attempt", attempt, "addrs", addrs, "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			// The first member with tag discovery sees only itself, or
			// nobody yet; it waits to be found or to find a later one.
			level := slog.LevelDebug
			if !aloneLogged {
				level, aloneLogged = slog.LevelInfo, true
			}
			log.Log(ctx, level, "no other member to join yet; waiting to be joined or to find one", "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, c.MaxBackoff)
	}
}

// candidates are the addresses of one attempt: Addrs and what Lookup finds,
// normalised to host:port, without duplicates and without self.
func candidates(ctx context.Context, c *JoinConfig, self string, port int, log *slog.Logger) []string {
	raw := append([]string(nil), c.Addrs...)
	if c.Lookup != nil {
		lctx, cancel := context.WithTimeout(ctx, c.LookupTimeout)
		found, err := c.Lookup(lctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("member lookup failed; retrying", "lookup", c.LookupName, "err", err)
		}
		raw = append(raw, found...)
	}
	seen := map[string]bool{self: true}
	var out []string
	for _, a := range raw {
		addr, err := JoinAddr(a, port)
		if err != nil {
			log.Warn("skipping a bad join address", "addr", a, "err", err)
			continue
		}
		if !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	return out
}

// joinedByOthers reports whether cl already sees another live member.
func joinedByOthers(cl *cluster.Cluster) bool {
	for _, m := range cl.Members() {
		if m.Alive && m.Name != cl.LocalName() {
			return true
		}
	}
	return false
}

// jitter returns a wait between d/2 and d.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
