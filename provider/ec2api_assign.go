package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// assignVisibleTimeout bounds the wait for assigned addresses to show in
// DescribeNetworkInterfaces (within the operation's own deadline).
const assignVisibleTimeout = 2 * time.Minute

// eniNotFoundCodes: a just-created interface may not be visible yet.
var eniNotFoundCodes = []string{"InvalidNetworkInterfaceID.NotFound"}

// assignIPs runs AssignPrivateIpAddresses on an interface and returns the
// addresses it added: the explicit ones in the order asked for, or the ones
// EC2 picked for a count in address order.
//
// The addresses come from describes of the interface before and after the
// call, not from its answer alone: AWS lists exactly the added addresses
// there, but some EC2 implementations list every address of the interface,
// primary included, and taken at face value that answer would claim
// addresses that were there before. The answer is still used to tell this
// call's additions from a concurrent writer's where it can.
//
// When the call succeeded but the outcome cannot be confirmed, the error
// comes with every address found added, so the caller can record them and
// nothing assigned goes untracked.
func assignIPs(ctx context.Context, api EC2API, in *ec2.AssignPrivateIpAddressesInput) ([]string, error) {
	eniID := aws.ToString(in.NetworkInterfaceId)
	want := len(in.PrivateIpAddresses)
	if want == 0 {
		want = int(aws.ToInt32(in.SecondaryPrivateIpAddressCount))
	}
	var before []string
	err := retryCodes(ctx, "network interface "+eniID, eniNotFoundCodes, func(ctx context.Context) error {
		eni, err := describeENI(ctx, api, eniID)
		if err == nil {
			before = eniIPs(eni)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("describing network interface %s: %w", eniID, err)
	}
	var out *ec2.AssignPrivateIpAddressesOutput
	err = retryCodes(ctx, "network interface "+eniID, eniNotFoundCodes, func(ctx context.Context) error {
		var err error
		out, err = api.AssignPrivateIpAddresses(ctx, in)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("assigning %d private IPs to %s: %w", want, eniID, err)
	}
	var answer []string
	for _, a := range out.AssignedPrivateIpAddresses {
		answer = append(answer, aws.ToString(a.PrivateIpAddress))
	}

	var added []string
	vctx, cancel := context.WithTimeout(ctx, assignVisibleTimeout)
	defer cancel()
	err = poll(vctx, "the addresses assigned to "+eniID+" to show", func(ctx context.Context) (bool, error) {
		eni, err := describeENI(ctx, api, eniID)
		if err != nil {
			return false, err
		}
		added = newlyAssigned(before, eniIPs(eni), answer, in.PrivateIpAddresses)
		return len(added) >= want, nil
	})
	switch {
	case err != nil && len(added) < want:
		return added, fmt.Errorf("AssignPrivateIpAddresses on %s succeeded, but the interface shows %d of the %d addresses asked for (%s): %w",
			eniID, len(added), want, ipsOrNone(added), err)
	case err != nil:
		return added, err
	case len(added) > want:
		return added, fmt.Errorf("AssignPrivateIpAddresses on %s asked for %d addresses, but the interface gained %d (%s) and the answer "+
			"does not tell which are this call's: another writer changed the interface at the same time. All of them are recorded; "+
			"plan again to drop the extra ones", eniID, want, len(added), strings.Join(added, ", "))
	}
	return added, nil
}

// newlyAssigned works out which addresses an assignment added from the
// interface's addresses before and after it and the call's answer. Explicit
// addresses count once they show. For a count, the answer's addresses that
// were not there before are the call's (all of the answer on AWS, the new
// ones of a full listing); an empty answer leaves only the difference of the
// two describes.
func newlyAssigned(before, after, answer, explicit []string) []string {
	if len(explicit) > 0 {
		return intersectIPs(explicit, after)
	}
	if claimed := complement(answer, before); len(claimed) > 0 {
		return orderIPs(nil, intersectIPs(claimed, after))
	}
	return orderIPs(nil, complement(after, before))
}

// eniIPs lists every private IPv4 address of an interface, primary included.
func eniIPs(eni *ec2types.NetworkInterface) []string {
	out := make([]string, 0, len(eni.PrivateIpAddresses))
	for _, a := range eni.PrivateIpAddresses {
		out = append(out, aws.ToString(a.PrivateIpAddress))
	}
	return out
}

func ipsOrNone(ips []string) string {
	if len(ips) == 0 {
		return "none"
	}
	return strings.Join(ips, ", ")
}
