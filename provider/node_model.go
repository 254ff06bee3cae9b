package provider

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Public IP modes of wsdirect_node.
const (
	publicIPNone    = "none"    // no public address
	publicIPAuto    = "auto"    // an ephemeral address assigned at launch
	publicIPElastic = "elastic" // an Elastic IP allocated and associated by the resource
)

// Tags put on Elastic IPs the resource allocates, so it can find (and never
// leak) its own addresses even when they are not associated.
const (
	tagEIPOwner     = "wsdirect:node"
	tagEIPPrivateIP = "wsdirect:private-ip"
)

// nodeModel is the state and plan of wsdirect_node.
type nodeModel struct {
	ID                      types.String   `tfsdk:"id"`
	AMI                     types.String   `tfsdk:"ami"`
	InstanceType            types.String   `tfsdk:"instance_type"`
	SubnetID                types.String   `tfsdk:"subnet_id"`
	SecurityGroupIDs        types.Set      `tfsdk:"security_group_ids"`
	KeyName                 types.String   `tfsdk:"key_name"`
	IAMInstanceProfile      types.String   `tfsdk:"iam_instance_profile"`
	SecondaryPrivateIPCount types.Int64    `tfsdk:"secondary_private_ip_count"`
	SecondaryPrivateIPs     types.List     `tfsdk:"secondary_private_ips"`
	PublicIP                types.String   `tfsdk:"public_ip"`
	ElasticIPPerSecondary   types.Bool     `tfsdk:"elastic_ip_per_secondary"`
	UserData                types.String   `tfsdk:"user_data"`
	MetadataOptions         types.Object   `tfsdk:"metadata_options"`
	Tags                    types.Map      `tfsdk:"tags"`
	TagsAll                 types.Map      `tfsdk:"tags_all"`
	NetworkInterfaceID      types.String   `tfsdk:"network_interface_id"`
	PrivateIP               types.String   `tfsdk:"private_ip"`
	PublicIPAddress         types.String   `tfsdk:"public_ip_address"`
	PublicDNS               types.String   `tfsdk:"public_dns"`
	ElasticIPAllocationIDs  types.Map      `tfsdk:"elastic_ip_allocation_ids"`
	AvailabilityZone        types.String   `tfsdk:"availability_zone"`
	State                   types.String   `tfsdk:"state"`
	Timeouts                timeouts.Value `tfsdk:"timeouts"`
	ElasticIPKey            types.String   `tfsdk:"elastic_ip_key"`
	WaitForReady            types.Object   `tfsdk:"wait_for_ready"`
}

// eipTargets returns the private IPs that should carry an Elastic IP.
func (m *nodeModel) eipTargets(secondaries []string) []string {
	if m.PublicIP.ValueString() != publicIPElastic {
		return nil
	}
	out := []string{m.PrivateIP.ValueString()}
	if m.ElasticIPPerSecondary.ValueBool() {
		out = append(out, secondaries...)
	}
	return out
}

// nullUnknowns replaces unknown values with nulls, so a partially created
// node can be saved (Terraform then marks it tainted and destroy cleans up).
func (m *nodeModel) nullUnknowns() {
	str := func(v *types.String) {
		if v.IsUnknown() {
			*v = types.StringNull()
		}
	}
	for _, v := range []*types.String{&m.ID, &m.AMI, &m.InstanceType, &m.SubnetID, &m.KeyName, &m.IAMInstanceProfile,
		&m.PublicIP, &m.UserData, &m.NetworkInterfaceID, &m.PrivateIP, &m.PublicIPAddress, &m.PublicDNS,
		&m.AvailabilityZone, &m.State} {
		str(v)
	}
	if m.SecurityGroupIDs.IsUnknown() {
		m.SecurityGroupIDs = types.SetNull(types.StringType)
	}
	if m.SecondaryPrivateIPCount.IsUnknown() {
		m.SecondaryPrivateIPCount = types.Int64Null()
	}
	if m.SecondaryPrivateIPs.IsUnknown() {
		m.SecondaryPrivateIPs = types.ListNull(types.StringType)
	}
	if m.ElasticIPPerSecondary.IsUnknown() {
		m.ElasticIPPerSecondary = types.BoolNull()
	}
	if m.Tags.IsUnknown() {
		m.Tags = types.MapNull(types.StringType)
	}
	if m.TagsAll.IsUnknown() {
		m.TagsAll = types.MapNull(types.StringType)
	}
	if m.ElasticIPAllocationIDs.IsUnknown() {
		m.ElasticIPAllocationIDs = types.MapNull(types.StringType)
	}
	if m.MetadataOptions.IsUnknown() {
		m.MetadataOptions = types.ObjectNull(metadataOptionsAttrTypes)
	}
	if m.WaitForReady.IsUnknown() {
		m.WaitForReady = types.ObjectNull(waitForReadyAttrTypes)
	}
	str(&m.ElasticIPKey)
}

// listStrings returns a known list's elements (nil for null or unknown).
func listStrings(ctx context.Context, l types.List, diags *diag.Diagnostics) []string {
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	out := []string{}
	diags.Append(l.ElementsAs(ctx, &out, false)...)
	return out
}

func setStrings(ctx context.Context, s types.Set, diags *diag.Diagnostics) []string {
	if s.IsNull() || s.IsUnknown() {
		return nil
	}
	out := []string{}
	diags.Append(s.ElementsAs(ctx, &out, false)...)
	return out
}

func mapStrings(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	out := map[string]string{}
	if m.IsNull() || m.IsUnknown() {
		return out
	}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}

func stringListValue(ss []string) types.List {
	elems := make([]attr.Value, len(ss))
	for i, s := range ss {
		elems[i] = types.StringValue(s)
	}
	return types.ListValueMust(types.StringType, elems)
}

func stringSetValue(ss []string) types.Set {
	elems := make([]attr.Value, len(ss))
	for i, s := range ss {
		elems[i] = types.StringValue(s)
	}
	return types.SetValueMust(types.StringType, elems)
}

func stringMapValue(m map[string]string) types.Map {
	elems := make(map[string]attr.Value, len(m))
	for k, v := range m {
		elems[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, elems)
}

// stringOrNull maps "" to null: EC2 omits empty fields, Terraform users
// leave them unset, and both must compare equal.
func stringOrNull(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// newClientToken returns a random RunInstances idempotency token. It is made
// once per create; the SDK retryer resends the same input, so a retried call
// can never start a second instance.
func newClientToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
