package ec2sim

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestMultipleInterfaces(t *testing.T) {
	s, c := newTest(t, func(c *Config) { c.PendingDescribes, c.ShutdownDescribes = 0, 0 })
	ctx := context.Background()
	out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeC5Xlarge,
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{
			{DeviceIndex: aws.Int32(1), SubnetId: aws.String("subnet-00000001"), SecondaryPrivateIpAddressCount: aws.Int32(2), DeleteOnTermination: aws.Bool(false)},
			{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001")},
		}})
	in := out.Instances[0]
	if len(in.NetworkInterfaces) != 2 || aws.ToInt32(in.NetworkInterfaces[0].Attachment.DeviceIndex) != 0 || len(in.NetworkInterfaces[1].PrivateIpAddresses) != 3 {
		t.Fatalf("interfaces = %+v", in.NetworkInterfaces)
	}
	describeOne(t, c, *in.InstanceId)
	alloc, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: in.InstanceId})
	wantCode(t, err, codeInvalidInstanceID)
	eth1 := in.NetworkInterfaces[1]
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, NetworkInterfaceId: eth1.NetworkInterfaceId,
		PrivateIpAddress: eth1.PrivateIpAddresses[2].PrivateIpAddress}); err != nil {
		t.Fatal(err)
	}
	// Moving the EIP needs AllowReassociation.
	_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, NetworkInterfaceId: in.NetworkInterfaces[0].NetworkInterfaceId})
	wantCode(t, err, codeAlreadyAssociated)
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, NetworkInterfaceId: in.NetworkInterfaces[0].NetworkInterfaceId, AllowReassociation: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if a := s.Addresses()[0]; a.NetworkInterfaceID != aws.ToString(in.NetworkInterfaces[0].NetworkInterfaceId) {
		t.Fatalf("EIP on %s after reassociation", a.NetworkInterfaceID)
	}
	// Termination deletes eth0 but keeps eth1 (DeleteOnTermination=false) with its addresses.
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*in.InstanceId}}); err != nil {
		t.Fatal(err)
	}
	describeOne(t, c, *in.InstanceId) // terminated
	enis, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(enis.NetworkInterfaces) != 1 || enis.NetworkInterfaces[0].Status != types.NetworkInterfaceStatusAvailable ||
		enis.NetworkInterfaces[0].Attachment != nil || len(enis.NetworkInterfaces[0].PrivateIpAddresses) != 3 {
		t.Fatalf("remaining interfaces = %+v", enis.NetworkInterfaces)
	}
}

func TestAssignAllowReassignment(t *testing.T) {
	s, c := newTest(t, func(c *Config) { c.PendingDescribes = 0 })
	ctx := context.Background()
	a := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Medium, SubnetId: aws.String("subnet-00000001")}).Instances[0]
	b := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Medium, SubnetId: aws.String("subnet-00000001")}).Instances[0]
	if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: a.NetworkInterfaces[0].NetworkInterfaceId, PrivateIpAddresses: []string{"10.0.1.77"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: b.NetworkInterfaces[0].NetworkInterfaceId, PrivateIpAddresses: []string{"10.0.1.77"}, AllowReassignment: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	snap := s.Instances()
	if len(snap[0].NetworkInterfaces[0].PrivateIPs) != 1 || snap[1].NetworkInterfaces[0].PrivateIPs[1] != "10.0.1.77" {
		t.Fatalf("after reassignment: %v / %v", snap[0].NetworkInterfaces[0].PrivateIPs, snap[1].NetworkInterfaces[0].PrivateIPs)
	}
	// A primary address cannot be moved, even with AllowReassignment.
	_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: b.NetworkInterfaces[0].NetworkInterfaceId, PrivateIpAddresses: []string{aws.ToString(a.PrivateIpAddress)}, AllowReassignment: aws.Bool(true)})
	wantCode(t, err, codeInvalidParameterValue)
}

func TestDescribeOtherResources(t *testing.T) {
	s, c := newTest(t, nil)
	ctx := context.Background()
	mustAddSubnet(t, s, "subnet-0000000a", "vpc-0000000a", "172.31.16.0/20", "us-east-1c")
	sn, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{"vpc-0000000a"}}}})
	if err != nil || len(sn.Subnets) != 1 || aws.ToInt32(sn.Subnets[0].AvailableIpAddressCount) != 4096-5 {
		t.Fatalf("subnets: %v %+v", err, sn)
	}
	// Launching in the new VPC picks that VPC's own default group; a group from another VPC is refused.
	out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro, SubnetId: aws.String("subnet-0000000a")})
	g := aws.ToString(out.Instances[0].SecurityGroups[0].GroupId)
	if g == "sg-00000001" || g == "" {
		t.Fatalf("default group in new VPC = %q", g)
	}
	inPrefix(t, "172.31.16.0/20", aws.ToString(out.Instances[0].PrivateIpAddress))
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String("subnet-0000000a"), SecurityGroupIds: []string{"sg-00000002"}})
	wantCode(t, err, codeInvalidParameter)
	sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-00000002"}})
	if err != nil || len(sgs.SecurityGroups) != 1 || aws.ToString(sgs.SecurityGroups[0].VpcId) != "vpc-00000001" {
		t.Fatalf("security groups: %v %+v", err, sgs)
	}
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(vpcs.Vpcs) != 2 {
		t.Fatalf("vpcs: %v %+v", err, vpcs)
	}
	attr, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: out.Instances[0].InstanceId, Attribute: types.InstanceAttributeNameGroupSet})
	if err != nil || len(attr.Groups) != 1 || aws.ToString(attr.Groups[0].GroupId) != g {
		t.Fatalf("groupSet attribute: %v %+v", err, attr)
	}
	// MaxCount launches several instances in one reservation, each with its own addresses.
	many := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(3), MaxCount: aws.Int32(3)})
	ips := map[string]bool{}
	for i, in := range many.Instances {
		ips[aws.ToString(in.PrivateIpAddress)] = true
		if aws.ToInt32(in.AmiLaunchIndex) != int32(i) {
			t.Fatalf("launch index %d = %d", i, aws.ToInt32(in.AmiLaunchIndex))
		}
	}
	if len(ips) != 3 {
		t.Fatalf("addresses not unique: %v", ips)
	}
}

// BenchmarkRunDescribe measures one RunInstances plus one DescribeInstances round trip
// through the real SDK client on loopback.
func BenchmarkRunDescribe(b *testing.B) {
	cfg := DefaultConfig()
	cfg.PendingDescribes = 0
	s := mustServer(b, cfg)
	mustAddSubnet(b, s, "subnet-0000000b", "vpc-0000000b", "10.8.0.0/16", "us-east-1a")
	c := s.EC2Client(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String("subnet-0000000b")})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{*out.Instances[0].InstanceId}}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*out.Instances[0].InstanceId}}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSubnetExhaustion(t *testing.T) {
	s, c := newTest(t, nil)
	ctx := context.Background()
	mustAddSubnet(t, s, "subnet-0000000c", "vpc-00000001", "10.0.9.0/28", "us-east-1a") // 16 - 5 = 11 usable
	spec := func(n int32) *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeC5Large, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-0000000c"), SecondaryPrivateIpAddressCount: aws.Int32(n)}}}
	}
	run(t, c, spec(9)) // 10 addresses
	_, err := c.RunInstances(ctx, spec(1))
	wantCode(t, err, codeInsufficientAddresses)
	if n := len(s.Instances()); n != 1 {
		t.Fatalf("failed launch left %d instances", n)
	}
	out := run(t, c, spec(0)) // the 11th address
	inPrefix(t, "10.0.9.0/28", aws.ToString(out.Instances[0].PrivateIpAddress))
	seen := map[string]bool{}
	for _, in := range s.Instances() {
		for _, ip := range in.NetworkInterfaces[0].PrivateIPs {
			if seen[ip] {
				t.Fatalf("duplicate %s", ip)
			}
			seen[ip] = true
			inPrefix(t, "10.0.9.0/28", ip)
		}
	}
	if len(seen) != 11 {
		t.Fatalf("%d addresses in use, want 11", len(seen))
	}
}

func TestInstanceRunningWaiter(t *testing.T) {
	// The SDK's own waiter retries InvalidInstanceID.NotFound and waits out pending.
	s, c := newTest(t, func(c *Config) { c.NotFoundAfterCreate = 2; c.PendingDescribes = 2 })
	id := aws.ToString(run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro}).Instances[0].InstanceId)
	w := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Millisecond, 5*time.Millisecond
	})
	if err := w.Wait(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// 2 NotFound + 2 pending + 1 running.
	if n := s.CallCount("DescribeInstances"); n != 5 {
		t.Fatalf("waiter made %d DescribeInstances calls, want 5", n)
	}
}

func TestConcurrentLaunches(t *testing.T) {
	s, c := newTest(t, nil)
	const workers, each = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				out, err := c.RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Small,
					MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
					NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"), SecondaryPrivateIpAddressCount: aws.Int32(3)}}})
				if err != nil {
					errs <- err
					continue
				}
				if _, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{*out.Instances[0].InstanceId}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	ins := s.Instances()
	for _, in := range ins {
		for _, ip := range in.NetworkInterfaces[0].PrivateIPs {
			if seen[ip] {
				t.Fatalf("address %s handed out twice", ip)
			}
			seen[ip] = true
		}
	}
	if len(ins) != workers*each || len(seen) != workers*each*4 {
		t.Fatalf("%d instances, %d addresses; want %d, %d", len(ins), len(seen), workers*each, workers*each*4)
	}
}
