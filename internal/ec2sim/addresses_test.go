package ec2sim

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestElasticIPLifecycle(t *testing.T) {
	s, c := newTest(t, nil) // PendingDescribes 1
	ctx := context.Background()
	out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeC5Large,
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"), SecondaryPrivateIpAddressCount: aws.Int32(2)}}})
	id := out.Instances[0].InstanceId
	secondary := aws.ToString(out.Instances[0].NetworkInterfaces[0].PrivateIpAddresses[1].PrivateIpAddress)

	alloc, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc,
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeElasticIp, Tags: []types.Tag{{Key: aws.String("node"), Value: id}}}}})
	if err != nil {
		t.Fatal(err)
	}
	// Pending: EC2 refuses the association.
	_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: id})
	wantCode(t, err, codeIncorrectInstanceState)
	describeOne(t, c, *id) // sees pending, ages it
	if st := describeOne(t, c, *id).State.Name; st != types.InstanceStateNameRunning {
		t.Fatalf("state %v, want running", st)
	}
	assoc, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: id, PrivateIpAddress: aws.String(secondary)})
	if err != nil {
		t.Fatal(err)
	}
	in := describeOne(t, c, *id)
	pa := in.NetworkInterfaces[0].PrivateIpAddresses[1]
	if pa.Association == nil || aws.ToString(pa.Association.PublicIp) != aws.ToString(alloc.PublicIp) {
		t.Fatalf("secondary association = %+v, want %s", pa.Association, aws.ToString(alloc.PublicIp))
	}
	if in.PublicIpAddress != nil {
		t.Fatalf("an EIP on a secondary must not become the instance public IP, got %s", aws.ToString(in.PublicIpAddress))
	}
	// Filters on DescribeAddresses.
	da, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{*id}}}})
	if err != nil || len(da.Addresses) != 1 || aws.ToString(da.Addresses[0].AssociationId) != aws.ToString(assoc.AssociationId) ||
		aws.ToString(da.Addresses[0].PrivateIpAddress) != secondary {
		t.Fatalf("DescribeAddresses by instance: %v %+v", err, da)
	}
	da, err = c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{{Name: aws.String("tag:node"), Values: []string{*id}}}})
	if err != nil || len(da.Addresses) != 1 {
		t.Fatalf("DescribeAddresses by tag: %v %+v", err, da)
	}
	// Releasing while associated fails; a second association without AllowReassociation too.
	_, err = c.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: alloc.AllocationId})
	wantCode(t, err, codeIPInUse)
	_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: id})
	wantCode(t, err, codeAlreadyAssociated)

	if _, err := c.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: assoc.AssociationId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: assoc.AssociationId})
	wantCode(t, err, codeAssociationNotFound)
	if _, err := c.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: alloc.AllocationId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: alloc.AllocationId})
	wantCode(t, err, codeAllocationNotFound)
	_, err = c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{*alloc.AllocationId}})
	wantCode(t, err, codeAllocationNotFound)
	if n := len(s.Addresses()); n != 0 {
		t.Fatalf("%d addresses after release", n)
	}
}

func TestElasticIPReplacesAutoPublicIP(t *testing.T) {
	_, c := newTest(t, func(c *Config) { c.PendingDescribes = 0 })
	ctx := context.Background()
	out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro,
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"), AssociatePublicIpAddress: aws.Bool(true)}}})
	id := out.Instances[0].InstanceId
	auto := aws.ToString(out.Instances[0].PublicIpAddress)
	describeOne(t, c, *id)
	alloc, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	assoc, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, NetworkInterfaceId: out.Instances[0].NetworkInterfaces[0].NetworkInterfaceId})
	if err != nil {
		t.Fatal(err)
	}
	in := describeOne(t, c, *id)
	if aws.ToString(in.PublicIpAddress) != aws.ToString(alloc.PublicIp) {
		t.Fatalf("public IP %s, want the EIP %s", aws.ToString(in.PublicIpAddress), aws.ToString(alloc.PublicIp))
	}
	if _, err := c.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: assoc.AssociationId}); err != nil {
		t.Fatal(err)
	}
	in = describeOne(t, c, *id)
	if ip := aws.ToString(in.PublicIpAddress); ip == "" || ip == aws.ToString(alloc.PublicIp) {
		t.Fatalf("after disassociation public IP = %q (auto was %s), want a fresh auto-assigned one", ip, auto)
	}
}

func TestAssignUnassignPrivateIPs(t *testing.T) {
	s, c := newTest(t, func(c *Config) { c.PendingDescribes = 0 })
	ctx := context.Background()
	out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Medium, SubnetId: aws.String("subnet-00000002")})
	eni := out.Instances[0].NetworkInterfaces[0].NetworkInterfaceId
	got, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.AssignedPrivateIpAddresses) != 3 || aws.ToString(got.NetworkInterfaceId) != *eni {
		t.Fatalf("assigned = %+v", got)
	}
	for _, a := range got.AssignedPrivateIpAddresses {
		inPrefix(t, "10.0.2.0/24", aws.ToString(a.PrivateIpAddress))
	}
	got2, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{"10.0.2.200"}})
	if err != nil || len(got2.AssignedPrivateIpAddresses) != 1 {
		t.Fatalf("explicit assign: %v %+v", err, got2)
	}
	// t3.medium: 6 per interface; we hold 5, so 2 more exceed the limit and change nothing.
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(2)})
	wantCode(t, err, codePrivateIPLimitExceeded)
	if n := len(s.Instances()[0].NetworkInterfaces[0].PrivateIPs); n != 5 {
		t.Fatalf("%d IPs after a refused assign, want 5", n)
	}
	// Unassign one in the middle; order of the rest is kept.
	before := s.Instances()[0].NetworkInterfaces[0].PrivateIPs
	victim := before[2]
	if _, err := c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{victim}}); err != nil {
		t.Fatal(err)
	}
	after := s.Instances()[0].NetworkInterfaces[0].PrivateIPs
	if want := slices.Delete(slices.Clone(before), 2, 3); !slices.Equal(after, want) {
		t.Fatalf("after unassign %v, want %v", after, want)
	}
	_, err = c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{victim}})
	wantCode(t, err, codeInvalidParameterValue)
	_, err = c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{before[0]}})
	wantCode(t, err, codeInvalidParameterValue) // the primary
	// The freed address can be claimed again; one held by the interface cannot.
	if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{victim}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String("eni-0000000000000dead"), SecondaryPrivateIpAddressCount: aws.Int32(1)})
	wantCode(t, err, codeENINotFound)
	// A second instance cannot take an address the first holds.
	out2 := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Medium, SubnetId: aws.String("subnet-00000002")})
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: out2.Instances[0].NetworkInterfaces[0].NetworkInterfaceId, PrivateIpAddresses: []string{"10.0.2.200"}})
	wantCode(t, err, codeIPInUse)
	// Subnet accounting follows.
	sn, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-00000002"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(sn.Subnets[0].AvailableIpAddressCount); got != 251-6 {
		t.Fatalf("available addresses = %d, want %d", got, 251-6)
	}
}

func TestTags(t *testing.T) {
	_, c := newTest(t, func(c *Config) { c.PendingDescribes = 0 })
	ctx := context.Background()
	id := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro}).Instances[0].InstanceId
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{*id}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{*id}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("wrong")}, {Key: aws.String("b")}}}); err != nil {
		t.Fatal(err)
	}
	in := describeOne(t, c, *id)
	if len(in.Tags) != 1 || aws.ToString(in.Tags[0].Key) != "a" {
		t.Fatalf("tags = %+v, want only a (value mismatch keeps it)", in.Tags)
	}
	for _, tc := range []struct{ id, code string }{
		{"i-0000000000000dead", codeInstanceNotFound},
		{"eni-0000000000000dead", codeENINotFound},
		{"eipalloc-0000000000000dead", codeAllocationNotFound},
		{"subnet-0000dead", codeSubnetNotFound},
		{"nonsense", codeInvalidID},
	} {
		_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{tc.id}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
		wantCode(t, err, tc.code)
	}
	dt, err := c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{*id}}}})
	if err != nil || len(dt.Tags) != 1 || dt.Tags[0].ResourceType != types.ResourceTypeInstance {
		t.Fatalf("DescribeTags: %v %+v", err, dt)
	}
}
