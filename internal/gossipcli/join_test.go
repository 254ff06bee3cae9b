package gossipcli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim/ec2simtest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// recorder is a slog.Handler that keeps every record, for tests that check
// what Join logged.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}

// count returns how many records have message msg.
func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.Message == msg {
			n++
		}
	}
	return n
}

// attrs returns attribute key of every record with message msg.
func (r *recorder) attrs(msg, key string) []slog.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Value
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				out = append(out, a.Value)
			}
			return true
		})
	}
	return out
}

const noAnswer = "no member answered; retrying"

// member starts a dev-mode cluster member on host:port (port 0 = any).
func member(t *testing.T, name, host string, port int) *cluster.Cluster {
	t.Helper()
	c := cluster.LocalConfig()
	c.Name, c.Role, c.Dev = name, cluster.RoleAuth, true
	c.BindAddr, c.BindPort = host, port
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cl, err := cluster.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Shutdown() })
	return cl
}

// fastJoin is the default policy with test timings.
func fastJoin(rec *recorder) *JoinConfig {
	c := DefaultJoinConfig()
	c.MinBackoff, c.MaxBackoff = 20*time.Millisecond, 80*time.Millisecond
	c.LookupTimeout = 10 * time.Second
	c.Logger = slog.New(rec)
	return c
}

// startJoin runs Join in the background; the returned channel gets its
// result.
func startJoin(ctx context.Context, cl *cluster.Cluster, c *JoinConfig) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Join(ctx, cl, c) }()
	return done
}

func waitJoin(t *testing.T, done <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("Join did not return within %s", within)
		return nil
	}
}

func sees(cl *cluster.Cluster, name string) bool {
	for _, m := range cl.Members() {
		if m.Name == name && m.Alive {
			return true
		}
	}
	return false
}

// sharedGossipPort is a port free for TCP and UDP on every host, for
// members that must share one gossip port number (as on EC2).
func sharedGossipPort(t *testing.T, hosts ...string) int {
	t.Helper()
	var ips []netip.Addr
	for _, h := range hosts {
		ips = append(ips, netip.MustParseAddr(h))
	}
	port, err := probe.SharedFreePort(ips...)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestJoinNothingToJoin(t *testing.T) {
	rec := &recorder{}
	a := member(t, "a", "127.0.0.1", 0)
	if err := waitJoin(t, startJoin(context.Background(), a, fastJoin(rec)), 5*time.Second); err != nil {
		t.Fatalf("Join with nothing to join: %v", err)
	}
	if rec.count("nothing to join; starting a new cluster") != 1 {
		t.Error("the new cluster was not logged")
	}
}

// TestJoinRetriesUntilLateMember: the member named by -join starts only
// after several attempts failed; Join keeps retrying with growing, capped,
// jittered waits and succeeds once it is up.
func TestJoinRetriesUntilLateMember(t *testing.T) {
	port := sharedGossipPort(t, "127.0.0.1")
	rec := &recorder{}
	a := member(t, "a", "127.0.0.1", 0)
	c := fastJoin(rec)
	c.Addrs = []string{"127.0.0.1:" + strconv.Itoa(port)}
	done := startJoin(context.Background(), a, c)

	// Enough failures to reach the cap.
	probe.Until(t, 20*time.Second, "5 failed attempts", func() error { return probe.Check(rec.count(noAnswer) >= 5, "not yet") })
	select {
	case err := <-done:
		t.Fatalf("Join returned %v with nobody to answer", err)
	default:
	}
	late := member(t, "late", "127.0.0.1", port)
	if err := waitJoin(t, done, 20*time.Second); err != nil {
		t.Fatalf("Join: %v", err)
	}
	probe.Until(t, 10*time.Second, "each member to see the other", func() error { return probe.Check(sees(a, "late") && sees(late, "a"), "not yet") })

	// The waits double from MinBackoff up to MaxBackoff, each jittered
	// into [b/2, b].
	waits := rec.attrs(noAnswer, "retry_in")
	b := c.MinBackoff
	for i, v := range waits {
		w := v.Duration()
		if w < b/2-time.Millisecond || w > b+time.Millisecond {
			t.Errorf("wait %d = %s, want within [%s, %s]", i+1, w, b/2, b)
		}
		b = min(2*b, c.MaxBackoff)
	}
	if b != c.MaxBackoff {
		t.Errorf("backoff never reached the cap: %d waits", len(waits))
	}
	attempts := rec.attrs(noAnswer, "attempt")
	for i, v := range attempts {
		if v.Int64() != int64(i+1) {
			t.Errorf("attempt numbers %v, want 1, 2, ...", attempts)
			break
		}
	}
}

// TestJoinStopsWhenJoined: a member whose lookup finds only itself (the
// first member under tag discovery) waits without error, logging the wait
// once at info, and stops as soon as another member joins it.
func TestJoinStopsWhenJoined(t *testing.T) {
	rec := &recorder{}
	a := member(t, "a", "127.0.0.1", 0)
	c := fastJoin(rec)
	lookups := make(chan struct{}, 100)
	c.Lookup = func(context.Context) ([]string, error) {
		select {
		case lookups <- struct{}{}:
		default:
		}
		host, _, _ := net.SplitHostPort(a.GossipAddr())
		return []string{host, a.GossipAddr()}, nil // only ourselves, as an IP and as host:port
	}
	done := startJoin(context.Background(), a, c)
	// Four lookups started: the first three waits are logged.
	probe.Until(t, 10*time.Second, "4 lookups", func() error { return probe.Check(len(lookups) >= 4, "not yet") })
	if n := rec.count(noAnswer); n != 0 {
		t.Errorf("Join dialled its own address (%d failed attempts)", n)
	}
	b := member(t, "b", "127.0.0.1", 0)
	if _, err := b.Join([]string{a.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	if err := waitJoin(t, done, 10*time.Second); err != nil {
		t.Fatalf("Join: %v", err)
	}
	var info, debug int
	rec.mu.Lock()
	for _, r := range rec.recs {
		if r.Message == "no other member to join yet; waiting to be joined or to find one" {
			switch r.Level {
			case slog.LevelInfo:
				info++
			case slog.LevelDebug:
				debug++
			}
		}
	}
	rec.mu.Unlock()
	if info != 1 || debug < 2 {
		t.Errorf("waiting logged %d times at info and %d at debug; want once at info, then debug", info, debug)
	}
}

// TestJoinLookupErrorsRetried: a failing lookup is logged and retried; the
// explicit addresses are still tried meanwhile.
func TestJoinLookupErrorsRetried(t *testing.T) {
	rec := &recorder{}
	a, b := member(t, "a", "127.0.0.1", 0), member(t, "b", "127.0.0.1", 0)
	c := fastJoin(rec)
	c.LookupName = "test lookup"
	var mu sync.Mutex
	calls := 0
	c.Lookup = func(context.Context) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls < 3 {
			return nil, errors.New("throttled")
		}
		return []string{b.GossipAddr()}, nil
	}
	if err := waitJoin(t, startJoin(context.Background(), a, c), 20*time.Second); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if n := rec.count("member lookup failed; retrying"); n != 2 {
		t.Errorf("%d lookup failures logged, want 2", n)
	}
	probe.Until(t, 10*time.Second, "a to see b", func() error { return probe.Check(sees(a, "b"), "not yet") })
}

func TestJoinContextEnds(t *testing.T) {
	rec := &recorder{}
	a := member(t, "a", "127.0.0.1", 0)
	c := fastJoin(rec)
	c.Addrs = []string{"127.0.0.1:1"}
	ctx, cancel := context.WithCancel(context.Background())
	done := startJoin(ctx, a, c)
	probe.Until(t, 10*time.Second, "a failed attempt", func() error { return probe.Check(rec.count(noAnswer) >= 1, "not yet") })
	cancel()
	if err := waitJoin(t, done, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Join after cancel: %v, want context.Canceled", err)
	}
}

func TestJoinConfigErrors(t *testing.T) {
	a := member(t, "a", "127.0.0.1", 0)
	for name, mod := range map[string]func(*JoinConfig){
		"LookupTimeout": func(c *JoinConfig) { c.LookupTimeout = 0 },
		"MinBackoff":    func(c *JoinConfig) { c.MinBackoff = 0 },
		"MaxBackoff":    func(c *JoinConfig) { c.MaxBackoff = c.MinBackoff - 1 },
		"Addrs":         func(c *JoinConfig) { c.Addrs = []string{"h:x"} },
	} {
		c := DefaultJoinConfig()
		c.Addrs = []string{"127.0.0.1:1"}
		mod(c)
		err := Join(context.Background(), a, c)
		if err == nil || !strings.Contains(err.Error(), "JoinConfig."+name) {
			t.Errorf("%s: error %v, want one naming the field", name, err)
		}
	}
	if err := Join(context.Background(), a, nil); err == nil {
		t.Error("nil config: no error")
	}
}

// TestJoinViaEC2Tag: Flags.JoinConfig's lookup goes through the real AWS
// SDK to the EC2 emulator. The emulator's subnet is 127.0.0.0/24, so the
// tagged instances' private IPs are loopback addresses: 127.0.0.5, where a
// member really listens, and 127.0.0.6, the joiner itself. Both use one
// gossip port, as on EC2. The instances stay "pending" for the first
// DescribeInstances calls, so the first lookups find nobody and Join has
// to retry.
func TestJoinViaEC2Tag(t *testing.T) {
	sc := ec2sim.DefaultConfig()
	sc.PendingDescribes = 3
	sim := ec2simtest.New(t, sc)
	defer sim.Close()
	ec2simtest.AddSubnet(t, sim, "subnet-0loop", "vpc-0loop", "127.0.0.0/24", "us-east-1a")
	for _, ip := range []string{"127.0.0.5", "127.0.0.6"} {
		_, err := sim.EC2Client(context.Background()).RunInstances(context.Background(), &ec2.RunInstancesInput{
			ImageId: aws.String("ami-12345678"), InstanceType: ec2types.InstanceTypeT3Micro,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			SubnetId: aws.String("subnet-0loop"), PrivateIpAddress: aws.String(ip),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
				Tags: []ec2types.Tag{{Key: aws.String("wsdirect-cluster"), Value: aws.String("t1")}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	port := sharedGossipPort(t, "127.0.0.5", "127.0.0.6")
	other := member(t, "other", "127.0.0.5", port)
	joiner := member(t, "joiner", "127.0.0.6", port)

	awsEnv(t)
	rec := &recorder{}
	f := &Flags{JoinEC2Tag: "wsdirect-cluster=t1", EC2Endpoint: sim.URL(), Dev: true, Bind: "127.0.0.6:" + strconv.Itoa(port)}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := f.JoinConfig(context.Background(), slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	c.MinBackoff, c.MaxBackoff = 20*time.Millisecond, 80*time.Millisecond
	if err := waitJoin(t, startJoin(context.Background(), joiner, c), 20*time.Second); err != nil {
		t.Fatalf("Join: %v", err)
	}
	probe.Until(t, 10*time.Second, "each member to see the other", func() error { return probe.Check(sees(other, "joiner") && sees(joiner, "other"), "not yet") })
	if n := sim.CallCount("DescribeInstances"); n < 3 {
		t.Errorf("%d DescribeInstances calls; the pending instances should have taken at least 3", n)
	}
	if n := rec.count("no other member to join yet; waiting to be joined or to find one"); n < 1 {
		t.Error("the lookups that found nobody running were not logged")
	}
	if n := rec.count(noAnswer); n != 0 {
		t.Errorf("%d failed attempts: Join dialled its own address or a pending instance", n)
	}
}
