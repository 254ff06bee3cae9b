package ec2sim

import (
	"context"
	"encoding/base64"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestConfigValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"zero config":       {func(c *Config) { *c = Config{} }, "Config.Region is empty"},
		"account":           {func(c *Config) { c.AccountID = "12" }, "Config.AccountID"},
		"pending":           {func(c *Config) { c.PendingDescribes = -1 }, "Config.PendingDescribes"},
		"shutdown":          {func(c *Config) { c.ShutdownDescribes = -1 }, "Config.ShutdownDescribes"},
		"not found":         {func(c *Config) { c.NotFoundAfterCreate = -1 }, "Config.NotFoundAfterCreate"},
		"throttle":          {func(c *Config) { c.ThrottleRate = 1.5 }, "Config.ThrottleRate"},
		"eip limit":         {func(c *Config) { c.ElasticIPLimit = -1 }, "Config.ElasticIPLimit"},
		"terminated ttl":    {func(c *Config) { c.TerminatedVisibleFor = 0 }, "Config.TerminatedVisibleFor"},
		"no pools":          {func(c *Config) { c.PublicPools = nil }, "Config.PublicPools is empty"},
		"pool overlaps vpc": {func(c *Config) { c.PublicPools = []netip.Prefix{netip.MustParsePrefix("10.0.5.0/24")} }, "overlaps Config.DefaultVPCCIDR"},
		"pools overlap": {func(c *Config) {
			c.PublicPools = []netip.Prefix{netip.MustParsePrefix("127.20.0.0/16"), netip.MustParsePrefix("127.20.1.0/24")}
		}, "overlaps 127.20.0.0/16"},
		"vpc not a network": {func(c *Config) { c.DefaultVPCCIDR = netip.MustParsePrefix("10.0.0.1/16") }, "Config.DefaultVPCCIDR"},
		"vpc too small":     {func(c *Config) { c.DefaultVPCCIDR = netip.MustParsePrefix("10.0.0.0/24") }, "Config.DefaultVPCCIDR"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			s, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v (server %v), want an error containing %q", err, s, tc.want)
			}
			if _, err := NewServer(cfg); err == nil {
				t.Fatal("NewServer accepted what New refused")
			}
		})
	}
}

func TestAddSubnetAndGroupErrors(t *testing.T) {
	s, _ := newTest(t, nil)
	for _, tc := range []struct{ id, vpc, cidr, want string }{
		{"subnet-0000000a", "vpc-00000001", "10.0.1.0/25", "overlaps subnet-00000001"},
		{"subnet-0000000a", "vpc-00000001", "10.9.0.0/24", "outside vpc-00000001"},
		{"subnet-0000000a", "vpc-00000001", "10.0.0.0/30", "IPv4 /16../28"},
		{"subnet-0000000a", "vpc-00000001", "nonsense", "IPv4 /16../28"},
		{"subnet-00000001", "vpc-00000001", "10.0.9.0/24", "be new"},
		{"sn-1", "vpc-00000001", "10.0.9.0/24", "must start with"},
		{"subnet-0000000a", "v-1", "10.0.9.0/24", "VPC ID"},
	} {
		if err := s.AddSubnet(tc.id, tc.vpc, tc.cidr, "us-east-1a"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddSubnet(%s, %s, %s) = %v, want %q", tc.id, tc.vpc, tc.cidr, err, tc.want)
		}
	}
	if err := s.AddSecurityGroup("sg-00000001", "dup", "vpc-00000001"); err == nil {
		t.Error("duplicate security group accepted")
	}
	if err := s.AddSecurityGroup("sg-0123456789abcdef0", "x", "vpc-0000dead"); err == nil || !strings.Contains(err.Error(), "unknown VPC") {
		t.Errorf("group in an unknown VPC: %v", err)
	}
	if err := s.AddSecurityGroup("sg-xyz", "x", "vpc-00000001"); err == nil {
		t.Error("malformed group ID accepted")
	}
	if err := s.AddSecurityGroup("sg-0123456789abcdef0", "example", "vpc-00000001"); err != nil {
		t.Fatal(err)
	}
}

// TestStopStart covers StopInstances and StartInstances with describes driving the states:
// the auto-assigned public IP goes at stop and a fresh one comes at start, private IPs and
// Elastic IPs stay, and user data can change only while stopped.
func TestStopStart(t *testing.T) {
	_, c := newTest(t, func(c *Config) { c.PendingDescribes, c.ShutdownDescribes = 0, 0 })
	ctx := context.Background()
	out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro,
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"), AssociatePublicIpAddress: aws.Bool(true)}}})
	id := aws.ToString(out.Instances[0].InstanceId)
	first := describeOne(t, c, id)
	if first.State.Name != types.InstanceStateNameRunning || aws.ToString(first.PublicIpAddress) == "" {
		t.Fatalf("after launch: %s, public %q", first.State.Name, aws.ToString(first.PublicIpAddress))
	}
	_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id), UserData: &types.SecureBlobAttributeValue{Value: []byte("x")}})
	wantCode(t, err, codeIncorrectInstanceState)

	st, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	if err != nil || st.StoppingInstances[0].CurrentState.Name != types.InstanceStateNameStopping || st.StoppingInstances[0].PreviousState.Name != types.InstanceStateNameRunning {
		t.Fatalf("StopInstances: %v %+v", err, st)
	}
	stopped := describeOne(t, c, id)
	if stopped.State.Name != types.InstanceStateNameStopped || aws.ToString(stopped.PublicIpAddress) != "" {
		t.Fatalf("after stop: %s, public %q", stopped.State.Name, aws.ToString(stopped.PublicIpAddress))
	}
	if aws.ToString(stopped.PrivateIpAddress) != aws.ToString(first.PrivateIpAddress) {
		t.Fatal("stop changed the private IP")
	}
	// While stopped, user data and type may change (the SDK base64-encodes the blob).
	if _, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id), UserData: &types.SecureBlobAttributeValue{Value: []byte("#cloud-config\n")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id), InstanceType: &types.AttributeValue{Value: aws.String("t3.nano")}}); err != nil {
		t.Fatal(err)
	}
	ud, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameUserData})
	if err != nil || aws.ToString(ud.UserData.Value) != base64.StdEncoding.EncodeToString([]byte("#cloud-config\n")) {
		t.Fatalf("user data after modify: %v %+v", err, ud)
	}
	_, err = c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{"i-00000000"}})
	wantCode(t, err, codeInstanceNotFound)

	sa, err := c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	if err != nil || sa.StartingInstances[0].CurrentState.Name != types.InstanceStateNamePending {
		t.Fatalf("StartInstances: %v %+v", err, sa)
	}
	again := describeOne(t, c, id)
	if again.State.Name != types.InstanceStateNameRunning || aws.ToString(again.PublicIpAddress) == "" || again.InstanceType != types.InstanceTypeT3Nano {
		t.Fatalf("after start: %s, public %q, type %s", again.State.Name, aws.ToString(again.PublicIpAddress), again.InstanceType)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, codeIncorrectInstanceState)
}

// recorder is a Lifecycle that records what it hears.
type recorder struct {
	mu      sync.Mutex
	events  []string
	changes int
}

func (r *recorder) Booting(in Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "booting "+in.ID+" "+in.State)
}

func (r *recorder) ShuttingDown(in Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "shutting-down "+in.ID+" "+in.State)
}

func (r *recorder) NetworkChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes++
}

func (r *recorder) take() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev, n := r.events, r.changes
	r.events, r.changes = nil, 0
	return ev, n
}

// TestLifecycleOwner: with a Lifecycle, describes no longer move states; the owner does, and
// an instance keeps its addresses while it shuts down.
func TestLifecycleOwner(t *testing.T) {
	rec := &recorder{}
	pools := []netip.Prefix{netip.MustParsePrefix("127.20.0.0/16")}
	s, c := newTest(t, func(c *Config) {
		c.Lifecycle = rec
		c.DefaultVPCCIDR = netip.MustParsePrefix("127.10.0.0/16")
		c.PublicPools = pools
	})
	ctx := context.Background()
	out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro,
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000002"), AssociatePublicIpAddress: aws.Bool(true)}}})
	id := aws.ToString(out.Instances[0].InstanceId)
	if ev, n := rec.take(); len(ev) != 1 || ev[0] != "booting "+id+" pending" || n == 0 {
		t.Fatalf("after RunInstances: events %v, %d network changes", ev, n)
	}
	for range 3 {
		if st := describeOne(t, c, id).State.Name; st != types.InstanceStateNamePending {
			t.Fatalf("describes moved the owned instance to %s", st)
		}
	}
	snap, ok := s.Instance(id)
	if !ok || !netip.MustParsePrefix("127.10.2.0/24").Contains(netip.MustParseAddr(snap.PrivateIP)) || !pools[0].Contains(netip.MustParseAddr(snap.PublicIP)) {
		t.Fatalf("snapshot %+v", snap)
	}
	ni := snap.NetworkInterfaces[0]
	if ni.MAC == "" || ni.SubnetCIDR != "127.10.2.0/24" || len(ni.PublicIPs) != 1 || ni.PublicIPs[0] != snap.PublicIP {
		t.Fatalf("interface snapshot %+v", ni)
	}
	if !strings.HasPrefix(snap.PrivateDNSName, "ip-127-10-2-") {
		t.Fatalf("private DNS name %q", snap.PrivateDNSName)
	}
	if err := s.InstanceShutDown(id); err == nil {
		t.Fatal("InstanceShutDown of a pending instance accepted")
	}
	if err := s.InstanceBooted(id); err != nil {
		t.Fatal(err)
	}
	if err := s.InstanceBooted(id); err == nil {
		t.Fatal("InstanceBooted twice accepted")
	}
	if st := describeOne(t, c, id).State.Name; st != types.InstanceStateNameRunning {
		t.Fatalf("after InstanceBooted: %s", st)
	}

	// An Elastic IP association is a network change.
	alloc, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	rec.take()
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, n := rec.take(); n != 1 {
		t.Fatalf("%d network changes after AssociateAddress, want 1", n)
	}
	if snap, _ := s.Instance(id); snap.PublicIP != aws.ToString(alloc.PublicIp) {
		t.Fatalf("public IP %s, want the Elastic IP %s", snap.PublicIP, aws.ToString(alloc.PublicIp))
	}

	// Stop: stopping until the owner says it is down; the Elastic IP stays.
	if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if ev, _ := rec.take(); len(ev) != 1 || ev[0] != "shutting-down "+id+" stopping" {
		t.Fatalf("after StopInstances: %v", ev)
	}
	if st := describeOne(t, c, id).State.Name; st != types.InstanceStateNameStopping {
		t.Fatalf("after StopInstances: %s", st)
	}
	if err := s.InstanceShutDown(id); err != nil {
		t.Fatal(err)
	}
	if in := describeOne(t, c, id); in.State.Name != types.InstanceStateNameStopped || aws.ToString(in.PublicIpAddress) != aws.ToString(alloc.PublicIp) {
		t.Fatalf("stopped: %s, public %q", in.State.Name, aws.ToString(in.PublicIpAddress))
	}
	if _, err := c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if ev, _ := rec.take(); len(ev) != 1 || ev[0] != "booting "+id+" pending" {
		t.Fatalf("after StartInstances: %v", ev)
	}
	if err := s.InstanceBooted(id); err != nil {
		t.Fatal(err)
	}

	// Terminate: shutting-down keeps the addresses until the owner is done.
	if _, err := c.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: aws.String(assocOf(t, c, aws.ToString(alloc.AllocationId)))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	in := describeOne(t, c, id)
	if in.State.Name != types.InstanceStateNameShuttingDown || aws.ToString(in.PrivateIpAddress) != snap.PrivateIP {
		t.Fatalf("shutting down: %s, private %q", in.State.Name, aws.ToString(in.PrivateIpAddress))
	}
	if err := s.InstanceShutDown(id); err != nil {
		t.Fatal(err)
	}
	in = describeOne(t, c, id)
	if in.State.Name != types.InstanceStateNameTerminated || aws.ToString(in.PrivateIpAddress) != "" {
		t.Fatalf("terminated: %s, private %q", in.State.Name, aws.ToString(in.PrivateIpAddress))
	}
	if err := s.InstanceBooted("i-00000000"); err == nil {
		t.Fatal("InstanceBooted of an unknown instance accepted")
	}
}

func assocOf(t *testing.T, c *ec2.Client, allocID string) string {
	t.Helper()
	out, err := c.DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{AllocationIds: []string{allocID}})
	if err != nil || len(out.Addresses) != 1 {
		t.Fatalf("DescribeAddresses: %v", err)
	}
	return aws.ToString(out.Addresses[0].AssociationId)
}

// TestOwnerlessCallsRefused: InstanceBooted and InstanceShutDown need a Lifecycle.
func TestOwnerlessCallsRefused(t *testing.T) {
	s, c := newTest(t, nil)
	id := aws.ToString(run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro}).Instances[0].InstanceId)
	if err := s.InstanceBooted(id); err == nil || !strings.Contains(err.Error(), "Lifecycle") {
		t.Fatalf("InstanceBooted without a Lifecycle: %v", err)
	}
	if err := s.InstanceShutDown(id); err == nil || !strings.Contains(err.Error(), "Lifecycle") {
		t.Fatalf("InstanceShutDown without a Lifecycle: %v", err)
	}
}

// TestShutdownBothModes: with describes driving states (Config.ShutdownDescribes) and with a
// Lifecycle owner alike, a stopping or shutting-down instance keeps its addresses and its
// Elastic IP, refuses new ones, and lets go of them only when it is stopped or terminated.
func TestShutdownBothModes(t *testing.T) {
	for _, mode := range []string{"describes", "owner"} {
		t.Run(mode, func(t *testing.T) {
			rec := &recorder{}
			s, c := newTest(t, func(c *Config) {
				c.PendingDescribes, c.ShutdownDescribes = 0, 2
				if mode == "owner" {
					c.Lifecycle = rec
				}
			})
			ctx := context.Background()
			out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Small,
				NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"),
					AssociatePublicIpAddress: aws.Bool(true), SecondaryPrivateIpAddressCount: aws.Int32(1)}}})
			id := aws.ToString(out.Instances[0].InstanceId)
			if mode == "owner" {
				if err := s.InstanceBooted(id); err != nil {
					t.Fatal(err)
				}
			}
			// finish ends the state change: the last describe that still sees it in flight
			// (describes mode) or the owner's call, then the describe that shows the end.
			finish := func(inFlight types.InstanceStateName) types.Instance {
				t.Helper()
				if mode == "owner" {
					if err := s.InstanceShutDown(id); err != nil {
						t.Fatal(err)
					}
				} else if st := describeOne(t, c, id).State.Name; st != inFlight {
					t.Fatalf("second describe: %s, want %s", st, inFlight)
				}
				return describeOne(t, c, id)
			}
			running := describeOne(t, c, id)
			private, public := aws.ToString(running.PrivateIpAddress), aws.ToString(running.PublicIpAddress)
			if running.State.Name != types.InstanceStateNameRunning || public == "" || len(running.NetworkInterfaces[0].PrivateIpAddresses) != 2 {
				t.Fatalf("running: %+v", running)
			}

			// Stop: the auto-assigned public IP stays until the instance is stopped.
			if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
				t.Fatal(err)
			}
			if in := describeOne(t, c, id); in.State.Name != types.InstanceStateNameStopping || aws.ToString(in.PublicIpAddress) != public {
				t.Fatalf("stopping: %s, public %q, want %s", in.State.Name, aws.ToString(in.PublicIpAddress), public)
			}
			if in := finish(types.InstanceStateNameStopping); in.State.Name != types.InstanceStateNameStopped || aws.ToString(in.PublicIpAddress) != "" {
				t.Fatalf("stopped: %s, public %q", in.State.Name, aws.ToString(in.PublicIpAddress))
			}
			alloc, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: aws.String(id)}); err != nil {
				t.Fatal(err)
			}

			// Terminate: shutting-down keeps every address and the Elastic IP.
			term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
			if err != nil || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameShuttingDown {
				t.Fatalf("TerminateInstances: %v %+v", err, term)
			}
			in := describeOne(t, c, id)
			if in.State.Name != types.InstanceStateNameShuttingDown || aws.ToString(in.PrivateIpAddress) != private ||
				len(in.NetworkInterfaces) != 1 || len(in.NetworkInterfaces[0].PrivateIpAddresses) != 2 {
				t.Fatalf("shutting down: %s, private %q, interfaces %+v", in.State.Name, aws.ToString(in.PrivateIpAddress), in.NetworkInterfaces)
			}
			if a := s.Addresses(); len(a) != 1 || a[0].InstanceID != id {
				t.Fatalf("Elastic IP while shutting down: %+v, want still on %s", a, id)
			}
			eni := in.NetworkInterfaces[0].NetworkInterfaceId
			_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(1)})
			wantCode(t, err, codeIncorrectInstanceState)
			other, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: other.AllocationId, NetworkInterfaceId: eni, PrivateIpAddress: aws.String(private), AllowReassociation: aws.Bool(true)})
			wantCode(t, err, codeIncorrectInstanceState)

			in = finish(types.InstanceStateNameShuttingDown)
			if in.State.Name != types.InstanceStateNameTerminated || len(in.NetworkInterfaces) != 0 {
				t.Fatalf("terminated: %s, %d interfaces", in.State.Name, len(in.NetworkInterfaces))
			}
			for _, a := range s.Addresses() {
				if a.AssociationID != "" {
					t.Fatalf("Elastic IP %s still associated after termination: %+v", a.PublicIP, a)
				}
			}
			// The private address is free again.
			run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro,
				PrivateIpAddress: aws.String(private), SubnetId: aws.String("subnet-00000001")})
		})
	}
}
