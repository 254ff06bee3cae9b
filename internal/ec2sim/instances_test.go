package ec2sim

import (
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// newTest starts a server and returns it with an EC2 client that does not retry, so every
// error the server sends reaches the test.
func newTest(t *testing.T, mutate func(*Config)) (*Server, *ec2.Client) {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	s := mustServer(t, cfg)
	return s, s.EC2Client(context.Background(), func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} })
}

// mustServer starts a server for the test and closes it at the end.
func mustServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// mustAddSubnet is AddSubnet for a test, which fails on an error.
func mustAddSubnet(t testing.TB, s *Server, id, vpcID, cidr, az string) {
	t.Helper()
	if err := s.AddSubnet(id, vpcID, cidr, az); err != nil {
		t.Fatal(err)
	}
}

func errCode(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not a smithy.APIError", err)
	}
	return ae.ErrorCode()
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := errCode(t, err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func run(t *testing.T, c *ec2.Client, in *ec2.RunInstancesInput) *ec2.RunInstancesOutput {
	t.Helper()
	if in.MinCount == nil {
		in.MinCount, in.MaxCount = aws.Int32(1), aws.Int32(1)
	}
	out, err := c.RunInstances(context.Background(), in)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return out
}

func describeOne(t *testing.T, c *ec2.Client, id string) types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeInstances %s: %v", id, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances %s: got %d reservations", id, len(out.Reservations))
	}
	return out.Reservations[0].Instances[0]
}

func inPrefix(t *testing.T, cidr, ip string) {
	t.Helper()
	p := netip.MustParsePrefix(cidr)
	a := netip.MustParseAddr(ip)
	first, last := usableRange(p)
	if !p.Contains(a) || a.Compare(first) < 0 || a.Compare(last) > 0 {
		t.Fatalf("address %s outside the usable range of %s", ip, cidr)
	}
}

func TestRunInstancesSecondaryCount(t *testing.T) {
	_, c := newTest(t, nil)
	ud := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n"))
	out := run(t, c, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeC5Large,
		KeyName: aws.String("ops"), UserData: aws.String(ud),
		IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("wsdirect-node")},
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000002"), Groups: []string{"sg-00000002"},
			SecondaryPrivateIpAddressCount: aws.Int32(4), AssociatePublicIpAddress: aws.Bool(true),
		}},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("node-1")}, {Key: aws.String("role"), Value: aws.String("wsdirect")}}},
			{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("eni"), Value: aws.String("yes")}}},
		},
	})
	if len(out.Instances) != 1 {
		t.Fatalf("got %d instances", len(out.Instances))
	}
	in := out.Instances[0]
	if in.State.Name != types.InstanceStateNamePending || aws.ToInt32(in.State.Code) != 0 {
		t.Fatalf("RunInstances state = %v/%d, want pending/0", in.State.Name, aws.ToInt32(in.State.Code))
	}
	if aws.ToString(in.Placement.AvailabilityZone) != "us-east-1b" || aws.ToString(in.SubnetId) != "subnet-00000002" || aws.ToString(in.VpcId) != "vpc-00000001" {
		t.Fatalf("placement = %s %s %s", aws.ToString(in.Placement.AvailabilityZone), aws.ToString(in.SubnetId), aws.ToString(in.VpcId))
	}
	if len(in.NetworkInterfaces) != 1 {
		t.Fatalf("got %d interfaces", len(in.NetworkInterfaces))
	}
	ni := in.NetworkInterfaces[0]
	if len(ni.PrivateIpAddresses) != 5 {
		t.Fatalf("got %d private IPs, want 5", len(ni.PrivateIpAddresses))
	}
	seen := map[string]bool{}
	for i, pa := range ni.PrivateIpAddresses {
		ip := aws.ToString(pa.PrivateIpAddress)
		inPrefix(t, "10.0.2.0/24", ip)
		if seen[ip] {
			t.Fatalf("duplicate IP %s", ip)
		}
		seen[ip] = true
		if aws.ToBool(pa.Primary) != (i == 0) {
			t.Fatalf("IP %d primary = %v", i, aws.ToBool(pa.Primary))
		}
	}
	if aws.ToString(in.PrivateIpAddress) != aws.ToString(ni.PrivateIpAddresses[0].PrivateIpAddress) {
		t.Fatalf("instance private IP %s != primary %s", aws.ToString(in.PrivateIpAddress), aws.ToString(ni.PrivateIpAddresses[0].PrivateIpAddress))
	}
	pub := aws.ToString(in.PublicIpAddress)
	if !netip.MustParsePrefix("198.51.100.0/24").Contains(netip.MustParseAddr(pub)) && !netip.MustParsePrefix("203.0.113.0/24").Contains(netip.MustParseAddr(pub)) {
		t.Fatalf("public IP %q not in the documentation ranges", pub)
	}
	if aws.ToString(in.PublicDnsName) == "" || ni.Association == nil || aws.ToString(ni.Association.PublicIp) != pub {
		t.Fatalf("public DNS %q / interface association %+v", aws.ToString(in.PublicDnsName), ni.Association)
	}
	if len(in.SecurityGroups) != 1 || aws.ToString(in.SecurityGroups[0].GroupId) != "sg-00000002" {
		t.Fatalf("groups = %+v", in.SecurityGroups)
	}
	if in.IamInstanceProfile == nil || aws.ToString(in.IamInstanceProfile.Arn) != "arn:aws:iam::123456789012:instance-profile/wsdirect-node" {
		t.Fatalf("iam profile = %+v", in.IamInstanceProfile)
	}
	if aws.ToString(in.KeyName) != "ops" || len(in.Tags) != 2 {
		t.Fatalf("key %q tags %+v", aws.ToString(in.KeyName), in.Tags)
	}

	attr, err := c.DescribeInstanceAttribute(context.Background(), &ec2.DescribeInstanceAttributeInput{InstanceId: in.InstanceId, Attribute: types.InstanceAttributeNameUserData})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(attr.UserData.Value) != ud {
		t.Fatalf("user data = %q", aws.ToString(attr.UserData.Value))
	}
	enis, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{aws.ToString(in.InstanceId)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(enis.NetworkInterfaces) != 1 || len(enis.NetworkInterfaces[0].TagSet) != 1 || len(enis.NetworkInterfaces[0].PrivateIpAddresses) != 5 {
		t.Fatalf("DescribeNetworkInterfaces = %+v", enis.NetworkInterfaces)
	}
	if a := enis.NetworkInterfaces[0].Attachment; a == nil || aws.ToString(a.InstanceId) != aws.ToString(in.InstanceId) || aws.ToInt32(a.DeviceIndex) != 0 {
		t.Fatalf("attachment = %+v", a)
	}
}

func TestRunInstancesExplicitIPs(t *testing.T) {
	s, c := newTest(t, nil)
	ips := []string{"10.0.1.10", "10.0.1.11", "10.0.1.12"}
	out := run(t, c, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Small,
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"),
			PrivateIpAddresses: []types.PrivateIpAddressSpecification{
				{PrivateIpAddress: aws.String(ips[0]), Primary: aws.Bool(true)},
				{PrivateIpAddress: aws.String(ips[1])},
				{PrivateIpAddress: aws.String(ips[2])},
			},
		}},
	})
	var got []string
	for _, pa := range out.Instances[0].NetworkInterfaces[0].PrivateIpAddresses {
		got = append(got, aws.ToString(pa.PrivateIpAddress))
	}
	if !slices.Equal(got, ips) {
		t.Fatalf("IPs = %v, want %v (order kept)", got, ips)
	}
	if snap := s.Instances(); len(snap) != 1 || !slices.Equal(snap[0].NetworkInterfaces[0].PrivateIPs, ips) {
		t.Fatalf("snapshot = %+v", snap)
	}
	// The same address again is in use; an address outside the subnet or reserved is invalid.
	for _, tc := range []struct{ ip, code string }{
		{"10.0.1.11", codeIPInUse},
		{"10.0.2.10", codeInvalidParameterValue},
		{"10.0.1.2", codeInvalidParameterValue},
		{"10.0.1.255", codeInvalidParameterValue},
	} {
		_, err := c.RunInstances(context.Background(), &ec2.RunInstancesInput{
			ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Small, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			SubnetId: aws.String("subnet-00000001"), PrivateIpAddress: aws.String(tc.ip),
		})
		wantCode(t, err, tc.code)
	}
	if n := len(s.Instances()); n != 1 {
		t.Fatalf("failed launches left %d instances", n)
	}
}

func TestRunInstancesValidation(t *testing.T) {
	_, c := newTest(t, nil)
	ctx := context.Background()
	base := func() *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
	}
	cases := []struct {
		name   string
		mutate func(*ec2.RunInstancesInput)
		code   string
	}{
		{"limit exceeded", func(in *ec2.RunInstancesInput) {
			// t3.micro allows 2 IPv4 addresses per interface: primary + 2 secondaries is 3.
			in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"), SecondaryPrivateIpAddressCount: aws.Int32(2)}}
		}, codePrivateIPLimitExceeded},
		{"malformed ami", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("img-1") }, codeInvalidAMIIDMalformed},
		{"unknown type", func(in *ec2.RunInstancesInput) { in.InstanceType = "z9.huge" }, codeInvalidInstanceType},
		{"unknown subnet", func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String("subnet-0000dead") }, codeSubnetNotFound},
		{"unknown group", func(in *ec2.RunInstancesInput) { in.SecurityGroupIds = []string{"sg-0000dead"} }, codeGroupNotFound},
		{"subnet with interfaces", func(in *ec2.RunInstancesInput) {
			in.SubnetId = aws.String("subnet-00000001")
			in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001")}}
		}, codeInvalidParameterCombination},
		{"public IP with two interfaces", func(in *ec2.RunInstancesInput) {
			in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{
				{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"), AssociatePublicIpAddress: aws.Bool(true)},
				{DeviceIndex: aws.Int32(1), SubnetId: aws.String("subnet-00000001")},
			}
		}, codeInvalidParameterCombination},
		{"too many interfaces", func(in *ec2.RunInstancesInput) {
			for i := range 3 {
				in.NetworkInterfaces = append(in.NetworkInterfaces, types.InstanceNetworkInterfaceSpecification{DeviceIndex: aws.Int32(int32(i)), SubnetId: aws.String("subnet-00000001")})
			}
		}, codeAttachmentLimitExceeded},
		{"bad user data", func(in *ec2.RunInstancesInput) { in.UserData = aws.String("not base64!") }, codeInvalidParameterValue},
		{"reserved tag", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}}}
		}, codeInvalidParameterValue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.mutate(in)
			_, err := c.RunInstances(ctx, in)
			wantCode(t, err, tc.code)
		})
	}
	// At the limit is fine: c5.large has 10 per interface.
	in := base()
	in.InstanceType = types.InstanceTypeC5Large
	in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"), SecondaryPrivateIpAddressCount: aws.Int32(9)}}
	if _, err := c.RunInstances(ctx, in); err != nil {
		t.Fatalf("9 secondaries on c5.large: %v", err)
	}
}

func TestClientTokenIdempotency(t *testing.T) {
	s, c := newTest(t, nil)
	in := func(typ types.InstanceType) *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: typ, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String("tok-1")}
	}
	a := run(t, c, in(types.InstanceTypeT3Micro))
	b := run(t, c, in(types.InstanceTypeT3Micro))
	if aws.ToString(a.ReservationId) != aws.ToString(b.ReservationId) || aws.ToString(a.Instances[0].InstanceId) != aws.ToString(b.Instances[0].InstanceId) {
		t.Fatalf("retry made a new reservation: %s/%s vs %s/%s", aws.ToString(a.ReservationId), aws.ToString(a.Instances[0].InstanceId), aws.ToString(b.ReservationId), aws.ToString(b.Instances[0].InstanceId))
	}
	if n := len(s.Instances()); n != 1 {
		t.Fatalf("%d instances after an idempotent retry, want 1", n)
	}
	_, err := c.RunInstances(context.Background(), in(types.InstanceTypeT3Small))
	wantCode(t, err, codeIdempotentMismatch)
	if got := aws.ToString(a.Instances[0].ClientToken); got != "tok-1" {
		t.Fatalf("client token = %q", got)
	}
}

func TestPendingThenRunning(t *testing.T) {
	_, c := newTest(t, func(c *Config) { c.PendingDescribes = 2 })
	id := aws.ToString(run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro}).Instances[0].InstanceId)
	var states []types.InstanceStateName
	for range 4 {
		states = append(states, describeOne(t, c, id).State.Name)
	}
	want := []types.InstanceStateName{"pending", "pending", "running", "running"}
	if !slices.Equal(states, want) {
		t.Fatalf("states = %v, want %v", states, want)
	}
}

func TestPendingAgesUnderFilters(t *testing.T) {
	// A caller that only ever asks for running instances must still see the instance come up.
	_, c := newTest(t, nil)
	run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro})
	running := &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}}
	counts := []int{}
	for range 2 {
		out, err := c.DescribeInstances(context.Background(), running)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range out.Reservations {
			n += len(r.Instances)
		}
		counts = append(counts, n)
	}
	if !slices.Equal(counts, []int{0, 1}) {
		t.Fatalf("running counts = %v, want [0 1]", counts)
	}
}

func TestDescribeFiltersAndPaging(t *testing.T) {
	_, c := newTest(t, func(c *Config) { c.PendingDescribes = 0 })
	ctx := context.Background()
	for i, role := range []string{"node", "node", "auth", "node", "haproxy", "node", "node"} {
		subnet := "subnet-00000001"
		if i%2 == 1 {
			subnet = "subnet-00000002"
		}
		run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro, SubnetId: aws.String(subnet),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("wsdirect:role"), Value: aws.String(role)}, {Key: aws.String("cluster"), Value: aws.String("prod")}}}}})
	}
	count := func(filters ...types.Filter) int {
		t.Helper()
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range out.Reservations {
			n += len(r.Instances)
		}
		return n
	}
	f := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	checks := []struct {
		filters []types.Filter
		want    int
	}{
		{[]types.Filter{f("tag:wsdirect:role", "node")}, 5},
		{[]types.Filter{f("tag:wsdirect:role", "node", "auth")}, 6},
		{[]types.Filter{f("tag:wsdirect:role", "h*")}, 1},
		{[]types.Filter{f("tag:wsdirect:role", "node"), f("subnet-id", "subnet-00000002")}, 3},
		{[]types.Filter{f("tag-key", "cluster")}, 7},
		{[]types.Filter{f("tag:missing", "x")}, 0},
		{[]types.Filter{f("vpc-id", "vpc-00000001"), f("instance-state-name", "running")}, 7},
		{[]types.Filter{f("instance-state-name", "pending")}, 0},
	}
	for _, ck := range checks {
		if got := count(ck.filters...); got != ck.want {
			t.Errorf("filters %v: %d instances, want %d", ck.filters, got, ck.want)
		}
	}
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{f("no-such-filter", "x")}})
	wantCode(t, err, codeInvalidParameterValue)

	// private-ip-address of one instance finds exactly it.
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	first := out.Reservations[0].Instances[0]
	if got := count(f("private-ip-address", aws.ToString(first.PrivateIpAddress))); got != 1 {
		t.Fatalf("private-ip-address filter: %d", got)
	}

	// Paging with the SDK paginator sees every instance exactly once.
	pg := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	seen := map[string]bool{}
	pages := 0
	for pg.HasMorePages() && pages < 10 {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				if seen[aws.ToString(in.InstanceId)] {
					t.Fatalf("instance %s on two pages", aws.ToString(in.InstanceId))
				}
				seen[aws.ToString(in.InstanceId)] = true
			}
		}
	}
	if pages != 2 || len(seen) != 7 {
		t.Fatalf("paging: %d pages, %d instances; want 2, 7", pages, len(seen))
	}
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantCode(t, err, codeInstanceNotFound)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"bogus"}})
	wantCode(t, err, codeInstanceMalformed)
}

func TestTerminateReleasesAddresses(t *testing.T) {
	s, c := newTest(t, func(c *Config) { c.PendingDescribes = 0 })
	ctx := context.Background()
	out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro,
		PrivateIpAddress: aws.String("10.0.1.50"), SubnetId: aws.String("subnet-00000001")})
	id := out.Instances[0].InstanceId
	describeOne(t, c, *id) // running
	alloc, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: id}); err != nil {
		t.Fatal(err)
	}
	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*id}})
	if err != nil {
		t.Fatal(err)
	}
	sc := term.TerminatingInstances[0]
	if sc.CurrentState.Name != types.InstanceStateNameShuttingDown || sc.PreviousState.Name != types.InstanceStateNameRunning {
		t.Fatalf("state change %v -> %v", sc.PreviousState.Name, sc.CurrentState.Name)
	}
	// Shutting down, the instance keeps its interface and its Elastic IP, as on EC2.
	in := describeOne(t, c, *id)
	if in.State.Name != types.InstanceStateNameShuttingDown || len(in.NetworkInterfaces) != 1 || aws.ToString(in.PrivateIpAddress) != "10.0.1.50" {
		t.Fatalf("shutting-down instance: state %v, %d interfaces, ip %v", in.State.Name, len(in.NetworkInterfaces), aws.ToString(in.PrivateIpAddress))
	}
	if a := s.Addresses(); len(a) != 1 || a[0].InstanceID != *id {
		t.Fatalf("EIP while shutting down = %+v, want still associated", a)
	}
	in = describeOne(t, c, *id)
	if in.State.Name != types.InstanceStateNameTerminated || len(in.NetworkInterfaces) != 0 || in.PrivateIpAddress != nil {
		t.Fatalf("terminated instance: state %v, %d interfaces, ip %v", in.State.Name, len(in.NetworkInterfaces), in.PrivateIpAddress)
	}
	if a := s.Addresses(); len(a) != 1 || a[0].AssociationID != "" || a[0].InstanceID != "" {
		t.Fatalf("EIP after terminate = %+v, want disassociated", a)
	}
	// The private IP is free again.
	run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro,
		PrivateIpAddress: aws.String("10.0.1.50"), SubnetId: aws.String("subnet-00000001")})
	// Terminating again is harmless and reports terminated.
	term, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*id}})
	if err != nil || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameTerminated {
		t.Fatalf("second terminate: %v %+v", err, term)
	}
	// Terminated instances stay visible to filters.
	outF, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"terminated"}}}})
	if err != nil || len(outF.Reservations) != 1 {
		t.Fatalf("terminated filter: %v %+v", err, outF)
	}
}

func TestTerminatedExpire(t *testing.T) {
	s, c := newTest(t, func(c *Config) { c.TerminatedVisibleFor = 1 }) // 1ns
	id := aws.ToString(run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro}).Instances[0].InstanceId)
	if _, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	describeOne(t, c, id) // shutting-down
	describeOne(t, c, id) // terminated now
	_, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	wantCode(t, err, codeInstanceNotFound)
	if n := len(s.Instances()); n != 0 {
		t.Fatalf("%d instances after expiry", n)
	}
}

func TestDescribeInstanceTypes(t *testing.T) {
	s, c := newTest(t, nil)
	ctx := context.Background()
	out, err := c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"t3.micro", "c5.4xlarge"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int32{}
	for _, it := range out.InstanceTypes {
		got[string(it.InstanceType)] = [2]int32{aws.ToInt32(it.NetworkInfo.MaximumNetworkInterfaces), aws.ToInt32(it.NetworkInfo.Ipv4AddressesPerInterface)}
	}
	if got["t3.micro"] != [2]int32{2, 2} || got["c5.4xlarge"] != [2]int32{8, 30} {
		t.Fatalf("limits = %v", got)
	}
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"x1.bogus"}})
	wantCode(t, err, codeInvalidInstanceType)
	s.AddInstanceType("x1.bogus", 5, 7)
	out, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"x1.bogus"}})
	if err != nil || aws.ToInt32(out.InstanceTypes[0].NetworkInfo.Ipv4AddressesPerInterface) != 7 {
		t.Fatalf("added type: %v %+v", err, out)
	}
}

func TestModifySecurityGroups(t *testing.T) {
	_, c := newTest(t, nil)
	ctx := context.Background()
	id := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro}).Instances[0].InstanceId
	in := describeOne(t, c, *id)
	if len(in.SecurityGroups) != 1 || aws.ToString(in.SecurityGroups[0].GroupId) != "sg-00000001" {
		t.Fatalf("default group = %+v", in.SecurityGroups)
	}
	if _, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: id, Groups: []string{"sg-00000001", "sg-00000002"}}); err != nil {
		t.Fatal(err)
	}
	in = describeOne(t, c, *id)
	if len(in.SecurityGroups) != 2 {
		t.Fatalf("groups after modify = %+v", in.SecurityGroups)
	}
	eni := in.NetworkInterfaces[0].NetworkInterfaceId
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: eni, Groups: []string{"sg-00000002"}}); err != nil {
		t.Fatal(err)
	}
	in = describeOne(t, c, *id)
	if len(in.SecurityGroups) != 1 || aws.ToString(in.SecurityGroups[0].GroupId) != "sg-00000002" {
		t.Fatalf("groups after ENI modify = %+v", in.SecurityGroups)
	}
	_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: id, Groups: []string{"sg-0000dead"}})
	wantCode(t, err, codeGroupNotFound)
}
