package provider

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
)

// Defaults of wsdirect_node.metadata_options. IMDSv2 only: a session token
// needs a PUT, which server-side request forgery through a GET (or a proxy
// passing GETs on) cannot make; the instance role's credentials, which
// read the cluster's secrets, are behind it. One hop: the token answer does
// not reach containers behind a bridge on the host. Endpoint on: the
// binaries find the region and public IP there.
const (
	defaultHTTPTokens   = "required"
	defaultHopLimit     = 1
	defaultHTTPEndpoint = "enabled"
)

// metadataOptionsModel is wsdirect_node.metadata_options.
type metadataOptionsModel struct {
	HTTPTokens   types.String `tfsdk:"http_tokens"`
	HopLimit     types.Int64  `tfsdk:"http_put_response_hop_limit"`
	HTTPEndpoint types.String `tfsdk:"http_endpoint"`
}

var metadataOptionsAttrTypes = map[string]attr.Type{
	"http_tokens":                 types.StringType,
	"http_put_response_hop_limit": types.Int64Type,
	"http_endpoint":               types.StringType,
}

func metadataOptionsObject(tokens string, hops int64, endpoint string) types.Object {
	return types.ObjectValueMust(metadataOptionsAttrTypes, map[string]attr.Value{
		"http_tokens":                 types.StringValue(tokens),
		"http_put_response_hop_limit": types.Int64Value(hops),
		"http_endpoint":               types.StringValue(endpoint),
	})
}

func metadataOptionsSchema() schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{
		Optional: true, Computed: true,
		Description: "Instance metadata service (IMDS) options, changed in place. The defaults allow IMDSv2 only, one network hop " +
			"for its token, and the endpoint on: the instance role's credentials (which read the cluster's secrets from " +
			"Parameter Store) are then out of reach of request forgery and of containers on the host.",
		Default: objectdefault.StaticValue(metadataOptionsObject(defaultHTTPTokens, defaultHopLimit, defaultHTTPEndpoint)),
		Attributes: map[string]schema.Attribute{
			"http_tokens": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(defaultHTTPTokens),
				Description: `"required" (default: IMDSv2 only, every request needs a session token) or "optional" (IMDSv1 too).`,
				Validators:  []validator.String{stringvalidator.OneOf("required", "optional")},
			},
			"http_put_response_hop_limit": schema.Int64Attribute{
				Optional: true, Computed: true, Default: int64default.StaticInt64(defaultHopLimit),
				Description: "How many network hops the IMDSv2 token answer may travel, 1 to 64. Default 1: only the host itself; " +
					"containers behind a bridge need 2.",
				Validators: []validator.Int64{int64validator.Between(1, 64)},
			},
			"http_endpoint": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(defaultHTTPEndpoint),
				Description: `"enabled" (default) or "disabled". wsdirect binaries read the region, the public IP and the ` +
					`instance role's credentials from IMDS, so they need it enabled.`,
				Validators: []validator.String{stringvalidator.OneOf("enabled", "disabled")},
			},
		},
	}
}

// metadataOptions reads the model's options (nil when null or unknown).
func (m *nodeModel) metadataOptions(ctx context.Context, diags *diag.Diagnostics) *metadataOptionsModel {
	if m.MetadataOptions.IsNull() || m.MetadataOptions.IsUnknown() {
		return nil
	}
	var o metadataOptionsModel
	diags.Append(m.MetadataOptions.As(ctx, &o, basetypes.ObjectAsOptions{})...)
	return &o
}

// metadataOptionsRequest is the RunInstances form of the options.
func metadataOptionsRequest(o *metadataOptionsModel) *ec2types.InstanceMetadataOptionsRequest {
	if o == nil {
		return nil
	}
	r := &ec2types.InstanceMetadataOptionsRequest{}
	if !o.HTTPTokens.IsUnknown() && !o.HTTPTokens.IsNull() {
		r.HttpTokens = ec2types.HttpTokensState(o.HTTPTokens.ValueString())
	}
	if !o.HopLimit.IsUnknown() && !o.HopLimit.IsNull() {
		r.HttpPutResponseHopLimit = aws.Int32(int32(o.HopLimit.ValueInt64()))
	}
	if !o.HTTPEndpoint.IsUnknown() && !o.HTTPEndpoint.IsNull() {
		r.HttpEndpoint = ec2types.InstanceMetadataEndpointState(o.HTTPEndpoint.ValueString())
	}
	return r
}

// modifyMetadataOptions changes the options in place when the plan differs
// from the state.
func modifyMetadataOptions(ctx context.Context, api EC2API, id string, plan, state *metadataOptionsModel) error {
	if plan == nil || (state != nil && *plan == *state) {
		return nil
	}
	r := metadataOptionsRequest(plan)
	_, err := api.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(id), HttpTokens: r.HttpTokens, HttpPutResponseHopLimit: r.HttpPutResponseHopLimit, HttpEndpoint: r.HttpEndpoint,
	})
	if err != nil {
		return fmt.Errorf("ModifyInstanceMetadataOptions: %w", err)
	}
	return nil
}

// metadataOptionsState is what DescribeInstances reports, as the
// attribute's value; nil (never from EC2) keeps the prior value.
func metadataOptionsState(o *ec2types.InstanceMetadataOptionsResponse, prior types.Object) types.Object {
	if o == nil {
		return prior
	}
	return metadataOptionsObject(string(o.HttpTokens), int64(aws.ToInt32(o.HttpPutResponseHopLimit)), string(o.HttpEndpoint))
}
