package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// EC2API is the part of the EC2 API the provider calls. *ec2.Client
// satisfies it; tests may wrap one.
type EC2API interface {
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	ModifyInstanceMetadataOptions(context.Context, *ec2.ModifyInstanceMetadataOptionsInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceMetadataOptionsOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	AssignPrivateIpAddresses(context.Context, *ec2.AssignPrivateIpAddressesInput, ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error)
	UnassignPrivateIpAddresses(context.Context, *ec2.UnassignPrivateIpAddressesInput, ...func(*ec2.Options)) (*ec2.UnassignPrivateIpAddressesOutput, error)
	AllocateAddress(context.Context, *ec2.AllocateAddressInput, ...func(*ec2.Options)) (*ec2.AllocateAddressOutput, error)
	AssociateAddress(context.Context, *ec2.AssociateAddressInput, ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error)
	DisassociateAddress(context.Context, *ec2.DisassociateAddressInput, ...func(*ec2.Options)) (*ec2.DisassociateAddressOutput, error)
	ReleaseAddress(context.Context, *ec2.ReleaseAddressInput, ...func(*ec2.Options)) (*ec2.ReleaseAddressOutput, error)
	DescribeAddresses(context.Context, *ec2.DescribeAddressesInput, ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags(context.Context, *ec2.DeleteTagsInput, ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
}

var _ EC2API = (*ec2.Client)(nil)

// Polling bounds for waiters. The deadline comes from the resource timeout;
// these only pace the calls. Variables so unit tests can shrink them.
var (
	pollInitial = 250 * time.Millisecond
	pollMax     = 5 * time.Second
)

// errorCode returns the AWS error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isNotFound reports AWS's "does not exist" errors: InvalidInstanceID.NotFound,
// InvalidNetworkInterfaceID.NotFound, InvalidAllocationID.NotFound, ...
func isNotFound(err error) bool {
	c := errorCode(err)
	return strings.HasSuffix(c, ".NotFound")
}

func hasCode(err error, codes ...string) bool {
	c := errorCode(err)
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// poll calls fn with growing pauses until it reports done, returns an error,
// or ctx ends. what names the wait in the timeout error.
func poll(ctx context.Context, what string, fn func(context.Context) (bool, error)) error {
	delay := pollInitial
	var lastErr error
	for {
		done, err := fn(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if lastErr != nil {
				return fmt.Errorf("timed out waiting for %s: %w", what, lastErr)
			}
			return fmt.Errorf("timed out waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*3/2, pollMax)
	}
}

// retryCodes runs fn until it succeeds, fails with an error whose code is not
// in codes, or ctx ends. It covers EC2's eventual consistency (a new instance
// or address not yet visible, an instance still pending), which the SDK
// retryer rightly does not retry.
func retryCodes(ctx context.Context, what string, codes []string, fn func(context.Context) error) error {
	var last error
	err := poll(ctx, what, func(ctx context.Context) (bool, error) {
		err := fn(ctx)
		if err == nil {
			return true, nil
		}
		if hasCode(err, codes...) {
			last = err
			return false, nil
		}
		return false, err
	})
	if err != nil && last != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (last error: %v)", err, last)
	}
	return err
}

// describeInstance returns the instance, or an error satisfying isNotFound.
func describeInstance(ctx context.Context, api EC2API, id string) (*ec2types.Instance, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return nil, err
	}
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == id {
				return &r.Instances[i], nil
			}
		}
	}
	return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("instance %s not found", id)}
}

func instanceState(inst *ec2types.Instance) ec2types.InstanceStateName {
	if inst == nil || inst.State == nil {
		return ""
	}
	return inst.State.Name
}

// waitInstanceRunning waits until the instance is running, retrying NotFound
// while EC2's describe path catches up with RunInstances.
func waitInstanceRunning(ctx context.Context, api EC2API, id string) (*ec2types.Instance, error) {
	var inst *ec2types.Instance
	err := poll(ctx, fmt.Sprintf("instance %s to be running", id), func(ctx context.Context) (bool, error) {
		i, err := describeInstance(ctx, api, id)
		if isNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		inst = i
		switch instanceState(i) {
		case ec2types.InstanceStateNameRunning:
			return true, nil
		case ec2types.InstanceStateNamePending:
			return false, nil
		default:
			reason := ""
			if i.StateReason != nil {
				reason = ": " + aws.ToString(i.StateReason.Message)
			}
			return false, fmt.Errorf("instance %s entered state %q while starting%s", id, instanceState(i), reason)
		}
	})
	return inst, err
}

// waitInstanceTerminated waits until the instance is terminated or gone.
func waitInstanceTerminated(ctx context.Context, api EC2API, id string) error {
	return poll(ctx, fmt.Sprintf("instance %s to terminate", id), func(ctx context.Context) (bool, error) {
		i, err := describeInstance(ctx, api, id)
		if isNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return instanceState(i) == ec2types.InstanceStateNameTerminated, nil
	})
}

// primaryENI returns the instance's device-index-0 network interface.
func primaryENI(inst *ec2types.Instance) *ec2types.InstanceNetworkInterface {
	for i := range inst.NetworkInterfaces {
		ni := &inst.NetworkInterfaces[i]
		if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
			return ni
		}
	}
	if len(inst.NetworkInterfaces) > 0 {
		return &inst.NetworkInterfaces[0]
	}
	return nil
}

// ipv4PerInterface returns the instance type's Ipv4AddressesPerInterface,
// primary address included.
func ipv4PerInterface(ctx context.Context, api EC2API, instanceType string) (int, error) {
	out, err := api.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(instanceType)},
	})
	if err != nil {
		return 0, fmt.Errorf("describing instance type %q: %w", instanceType, err)
	}
	for _, it := range out.InstanceTypes {
		if string(it.InstanceType) == instanceType && it.NetworkInfo != nil && it.NetworkInfo.Ipv4AddressesPerInterface != nil {
			return int(*it.NetworkInfo.Ipv4AddressesPerInterface), nil
		}
	}
	return 0, fmt.Errorf("instance type %q not found or has no network info", instanceType)
}

// checkIPv4Limit checks that primary + secondaries fits the per-interface
// limit, with a message that names the type and the limit.
func checkIPv4Limit(instanceType string, limit, secondaries int) error {
	if 1+secondaries <= limit {
		return nil
	}
	return fmt.Errorf("instance type %q allows %d private IPv4 addresses per network interface (1 primary + %d secondary), but %d secondary addresses were requested",
		instanceType, limit, limit-1, secondaries)
}

func ec2Tags(m map[string]string) []ec2types.Tag {
	out := make([]ec2types.Tag, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// errENINotFound is returned when DescribeNetworkInterfaces answers without
// the interface asked for; it satisfies isNotFound.
var errENINotFound error = &smithy.GenericAPIError{Code: "InvalidNetworkInterfaceID.NotFound", Message: "network interface not found"}
