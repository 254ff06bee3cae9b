package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Planning of the attributes an in-place update may or may not change. A
// value is left unknown only when the update can really change it, so that a
// plain secondary-count change does not show the public address or the
// Elastic IPs as "(known after apply)".

// planCountSecondaries plans secondary_private_ips when the configuration
// gives a count: the recorded list while the count stays; its head when the
// count shrinks (an update drops addresses from the end); the recorded list
// followed by unknown addresses when it grows (an update keeps every
// recorded address and appends EC2's picks).
func planCountSecondaries(state *nodeModel, count types.Int64) types.List {
	if state == nil || count.IsUnknown() || count.IsNull() || state.SecondaryPrivateIPs.IsNull() || state.SecondaryPrivateIPs.IsUnknown() {
		return types.ListUnknown(types.StringType)
	}
	have := state.SecondaryPrivateIPs.Elements()
	n := int(count.ValueInt64())
	if n <= len(have) {
		return types.ListValueMust(types.StringType, have[:n])
	}
	elems := append([]attr.Value{}, have...)
	for len(elems) < n {
		elems = append(elems, types.StringUnknown())
	}
	return types.ListValueMust(types.StringType, elems)
}

// planElasticIPs plans elastic_ip_allocation_ids, public_ip_address and
// public_dns for an in-place update in "elastic" mode. The primary private IP
// cannot change in place, so its Elastic IP, and with it the public address
// and DNS name, stays unless it is missing now. The allocation map keeps
// every recorded entry the update keeps; an address gaining an Elastic IP
// gets an unknown allocation ID, and the map is unknown as a whole only when
// its keys are (new secondaries EC2 has yet to pick).
func planElasticIPs(ctx context.Context, plan, state *nodeModel, diags *diag.Diagnostics) {
	have := mapStrings(ctx, state.ElasticIPAllocationIDs, diags)
	primary := state.PrivateIP.ValueString()
	if _, ok := have[primary]; ok && !state.PublicIPAddress.IsNull() {
		plan.PublicIPAddress = state.PublicIPAddress
		plan.PublicDNS = state.PublicDNS
	} else {
		plan.PublicIPAddress = types.StringUnknown()
		plan.PublicDNS = types.StringUnknown()
	}

	targets := []string{primary}
	switch {
	case plan.ElasticIPPerSecondary.IsUnknown():
		plan.ElasticIPAllocationIDs = types.MapUnknown(types.StringType)
		return
	case plan.ElasticIPPerSecondary.ValueBool():
		if plan.SecondaryPrivateIPs.IsUnknown() {
			plan.ElasticIPAllocationIDs = types.MapUnknown(types.StringType)
			return
		}
		for _, v := range plan.SecondaryPrivateIPs.Elements() {
			s, ok := v.(types.String)
			if !ok || s.IsUnknown() {
				plan.ElasticIPAllocationIDs = types.MapUnknown(types.StringType)
				return
			}
			targets = append(targets, s.ValueString())
		}
	}
	elems := make(map[string]attr.Value, len(targets))
	for _, t := range targets {
		if id, ok := have[t]; ok {
			elems[t] = types.StringValue(id)
		} else {
			elems[t] = types.StringUnknown()
		}
	}
	plan.ElasticIPAllocationIDs = types.MapValueMust(types.StringType, elems)
}

// plannedMismatch compares an update's outcome with what its plan promised
// as known. They differ only when something changed outside Terraform
// between plan and apply (an address unassigned, an Elastic IP released);
// the caller then reports it as such, instead of Terraform's "inconsistent
// result after apply", and saves what is there.
func plannedMismatch(plan, got *nodeModel) []string {
	var out []string
	str := func(name string, p, g types.String) {
		if !p.IsUnknown() && !p.Equal(g) {
			out = append(out, fmt.Sprintf("%s is %s, planned %s", name, showString(g), showString(p)))
		}
	}
	str("public_ip_address", plan.PublicIPAddress, got.PublicIPAddress)
	str("public_dns", plan.PublicDNS, got.PublicDNS)
	if !plan.SecondaryPrivateIPs.IsUnknown() {
		p, g := plan.SecondaryPrivateIPs.Elements(), got.SecondaryPrivateIPs.Elements()
		if len(p) != len(g) {
			out = append(out, fmt.Sprintf("secondary_private_ips has %d addresses, planned %d", len(g), len(p)))
		} else {
			for i := range p {
				if !p[i].IsUnknown() && !p[i].Equal(g[i]) {
					out = append(out, fmt.Sprintf("secondary_private_ips[%d] is %s, planned %s", i, g[i], p[i]))
				}
			}
		}
	}
	if !plan.ElasticIPAllocationIDs.IsUnknown() {
		p, g := plan.ElasticIPAllocationIDs.Elements(), got.ElasticIPAllocationIDs.Elements()
		for k, pv := range p {
			gv, ok := g[k]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s has no Elastic IP, planned one", k))
			case !pv.IsUnknown() && !pv.Equal(gv):
				out = append(out, fmt.Sprintf("the Elastic IP of %s is %s, planned %s", k, gv, pv))
			}
		}
		for k := range g {
			if _, ok := p[k]; !ok {
				out = append(out, fmt.Sprintf("%s has an Elastic IP, planned none", k))
			}
		}
	}
	return out
}

func showString(v types.String) string {
	if v.IsNull() {
		return "null"
	}
	return fmt.Sprintf("%q", v.ValueString())
}

// mismatchError words plannedMismatch's findings for the user.
func mismatchError(id string, found []string) error {
	return fmt.Errorf("instance %s changed outside Terraform after the plan was made: %s. The node's actual state is saved; "+
		"run terraform apply again to plan from it", id, strings.Join(found, "; "))
}

// hasUnknownElement reports a known list with an unknown element (a count
// growing: the addresses EC2 will pick).
func hasUnknownElement(l types.List) bool {
	for _, v := range l.Elements() {
		if v.IsUnknown() {
			return true
		}
	}
	return false
}
