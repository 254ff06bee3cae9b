package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework/diag"
)

// Error codes that mean "try the association again shortly": the instance
// is still pending, or the new instance, interface or address is not yet
// visible everywhere in EC2.
var associateRetryCodes = []string{
	"IncorrectInstanceState",
	"InvalidInstanceID.NotFound",
	"InvalidNetworkInterfaceID.NotFound",
	"InvalidAllocationID.NotFound",
	"InvalidInstanceID",
}

// releaseRetryCodes: right after a disassociation EC2 may still see the
// address in use.
var releaseRetryCodes = []string{"InvalidIPAddress.InUse", "AuthFailure"}

func isOwnEIP(a ec2types.Address, instanceID string) bool {
	for _, t := range a.Tags {
		if aws.ToString(t.Key) == tagEIPOwner && aws.ToString(t.Value) == instanceID {
			return true
		}
	}
	return false
}

// listAddresses returns every Elastic IP of the account in the region. An
// account holds few (the default quota is 5), and filtering here keeps the
// provider working against endpoints with partial filter support.
func listAddresses(ctx context.Context, api EC2API) ([]ec2types.Address, error) {
	out, err := api.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		return nil, fmt.Errorf("describing addresses: %w", err)
	}
	return out.Addresses, nil
}

// syncEIPs makes exactly the private IPs in targets, among the node's own
// addresses (nodeIPs: the primary and the secondaries it owns), carry an
// Elastic IP on the interface. An Elastic IP already on a target stays,
// whoever owns it. On the node's other addresses it disassociates Elastic IPs
// and releases those the node owns; Elastic IPs on addresses the node does
// not own are left alone. It reuses the node's unassociated addresses,
// allocates the rest, and associates them, retrying while the instance is
// pending. An address allocated here whose association fails is released;
// if even that fails it stays tagged as the node's (so the next apply or the
// destroy finds it) and a warning says so.
func syncEIPs(ctx context.Context, api EC2API, instanceID, eniID string, nodeIPs, targets []string, tags map[string]string) (diag.Diagnostics, error) {
	var diags diag.Diagnostics
	addrs, err := listAddresses(ctx, api)
	if err != nil {
		return diags, err
	}
	assoc := map[string]ec2types.Address{}
	var spare []ec2types.Address
	for _, a := range addrs {
		switch {
		case aws.ToString(a.NetworkInterfaceId) == eniID:
			if pip := aws.ToString(a.PrivateIpAddress); contains(nodeIPs, pip) {
				assoc[pip] = a
			}
		case a.AssociationId == nil && isOwnEIP(a, instanceID):
			spare = append(spare, a)
		}
	}

	for _, pip := range sortedKeys(addressKeys(assoc)) {
		if contains(targets, pip) {
			continue
		}
		a := assoc[pip]
		if err := disassociate(ctx, api, a); err != nil {
			return diags, err
		}
		if isOwnEIP(a, instanceID) {
			if err := release(ctx, api, a); err != nil {
				return diags, err
			}
		}
	}

	for _, pip := range targets {
		if _, ok := assoc[pip]; ok {
			continue
		}
		var a ec2types.Address
		if len(spare) > 0 {
			a, spare = spare[0], spare[1:]
		} else {
			all := mergeTags(tags, map[string]string{tagEIPOwner: instanceID, tagEIPPrivateIP: pip})
			out, err := api.AllocateAddress(ctx, &ec2.AllocateAddressInput{
				Domain:            ec2types.DomainTypeVpc,
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeElasticIp, Tags: ec2Tags(all)}},
			})
			if err != nil {
				return diags, fmt.Errorf("allocating an Elastic IP for %s: %w", pip, err)
			}
			a = ec2types.Address{AllocationId: out.AllocationId, PublicIp: out.PublicIp}
		}
		err := retryCodes(ctx, fmt.Sprintf("Elastic IP %s to associate with %s", aws.ToString(a.PublicIp), pip), associateRetryCodes,
			func(ctx context.Context) error {
				_, err := api.AssociateAddress(ctx, &ec2.AssociateAddressInput{
					AllocationId:       a.AllocationId,
					NetworkInterfaceId: aws.String(eniID),
					PrivateIpAddress:   aws.String(pip),
					AllowReassociation: aws.Bool(false),
				})
				return err
			})
		if err != nil {
			err = fmt.Errorf("associating Elastic IP %s (%s) with %s: %w", aws.ToString(a.PublicIp), aws.ToString(a.AllocationId), pip, err)
			// Release with a fresh deadline: the create deadline may be what
			// just expired, and leaking the address is worse than waiting.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			defer cancel()
			if rerr := release(rctx, api, a); rerr != nil {
				diags.AddWarning("Elastic IP kept",
					fmt.Sprintf("Elastic IP %s (%s) could not be released after its association failed: %v. "+
						"It is tagged %s=%s; the next apply or destroy of this node releases it.",
						aws.ToString(a.PublicIp), aws.ToString(a.AllocationId), rerr, tagEIPOwner, instanceID))
			}
			for _, s := range spare {
				_ = release(rctx, api, s)
			}
			return diags, err
		}
	}
	// Leftover unassociated addresses of this node are no longer needed.
	for _, a := range spare {
		if err := release(ctx, api, a); err != nil {
			return diags, err
		}
	}
	return diags, nil
}

// releaseTimeout bounds cleanup that runs after the operation's own deadline.
const releaseTimeout = 2 * time.Minute

// releaseNodeEIPs disassociates and releases every Elastic IP the node owns
// (tagged as its own), associated or not. Others, even when associated with
// the node's interface, stay allocated: EC2 disassociates them when the
// instance terminates.
func releaseNodeEIPs(ctx context.Context, api EC2API, instanceID string) error {
	addrs, err := listAddresses(ctx, api)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range addrs {
		if !isOwnEIP(a, instanceID) {
			continue
		}
		if err := disassociate(ctx, api, a); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := release(ctx, api, a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func disassociate(ctx context.Context, api EC2API, a ec2types.Address) error {
	if a.AssociationId == nil {
		return nil
	}
	_, err := api.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: a.AssociationId})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("disassociating Elastic IP %s: %w", aws.ToString(a.PublicIp), err)
	}
	return nil
}

func release(ctx context.Context, api EC2API, a ec2types.Address) error {
	err := retryCodes(ctx, fmt.Sprintf("Elastic IP %s to release", aws.ToString(a.PublicIp)), releaseRetryCodes,
		func(ctx context.Context) error {
			_, err := api.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: a.AllocationId})
			if isNotFound(err) {
				return nil
			}
			return err
		})
	if err != nil {
		return fmt.Errorf("releasing Elastic IP %s (%s): %w", aws.ToString(a.PublicIp), aws.ToString(a.AllocationId), err)
	}
	return nil
}

func addressKeys(m map[string]ec2types.Address) map[string]string {
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = ""
	}
	return out
}

// tagEIPKey names an Elastic IP that outlives its instances (elastic_ip_key).
const tagEIPKey = "wsdirect:eip-key"

// takeOverKeyedEIP moves the Elastic IP tagged elastic_ip_key = key, if there
// is one, to the new instance's primary address and makes it the new
// instance's own, so the instance it replaces (create_before_destroy) no
// longer releases it. It reports whether it found one; without, the caller
// allocates as usual and tags the address with the key (tagKeyedEIP).
func takeOverKeyedEIP(ctx context.Context, api EC2API, key, instanceID, eniID, primary string) (bool, error) {
	addrs, err := listAddresses(ctx, api)
	if err != nil {
		return false, err
	}
	var found []ec2types.Address
	for _, a := range addrs {
		if tagValue(a.Tags, tagEIPKey) == key {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return false, nil
	case 1:
	default:
		return false, fmt.Errorf("%d Elastic IPs are tagged %s = %s; keep one", len(found), tagEIPKey, key)
	}
	a := found[0]
	err = retryCodes(ctx, fmt.Sprintf("Elastic IP %s to move to %s", aws.ToString(a.PublicIp), instanceID), associateRetryCodes,
		func(ctx context.Context) error {
			_, err := api.AssociateAddress(ctx, &ec2.AssociateAddressInput{
				AllocationId:       a.AllocationId,
				NetworkInterfaceId: aws.String(eniID),
				PrivateIpAddress:   aws.String(primary),
				// It is the old instance's until now: that is the point.
				AllowReassociation: aws.Bool(true),
			})
			return err
		})
	if err != nil {
		return false, fmt.Errorf("moving Elastic IP %s (%s, %s = %s) to %s: %w", aws.ToString(a.PublicIp), aws.ToString(a.AllocationId), tagEIPKey, key, instanceID, err)
	}
	return true, tagEIP(ctx, api, aws.ToString(a.AllocationId), map[string]string{tagEIPOwner: instanceID, tagEIPPrivateIP: primary, tagEIPKey: key})
}

// tagKeyedEIP tags the Elastic IP on the instance's primary address with
// the key, so the instance that replaces this one takes it over.
func tagKeyedEIP(ctx context.Context, api EC2API, key, eniID, primary string) error {
	addrs, err := listAddresses(ctx, api)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if aws.ToString(a.NetworkInterfaceId) == eniID && aws.ToString(a.PrivateIpAddress) == primary {
			return tagEIP(ctx, api, aws.ToString(a.AllocationId), map[string]string{tagEIPKey: key})
		}
	}
	return fmt.Errorf("no Elastic IP on %s to tag %s = %s", primary, tagEIPKey, key)
}

func tagEIP(ctx context.Context, api EC2API, allocID string, tags map[string]string) error {
	if _, err := api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{allocID}, Tags: ec2Tags(tags)}); err != nil {
		return fmt.Errorf("tagging Elastic IP %s: %w", allocID, err)
	}
	return nil
}

func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}
