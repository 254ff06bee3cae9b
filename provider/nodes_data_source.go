package provider

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// NewNodesDataSource returns the wsdirect_nodes data source.
func NewNodesDataSource() datasource.DataSource { return &nodesDataSource{} }

type nodesDataSource struct {
	data *providerData
}

type nodesDataSourceModel struct {
	Tags  types.Map       `tfsdk:"tags"`
	State types.String    `tfsdk:"state"`
	IDs   types.List      `tfsdk:"ids"`
	Nodes []nodeItemModel `tfsdk:"nodes"`
}

type nodeItemModel struct {
	ID                  types.String `tfsdk:"id"`
	PrivateIP           types.String `tfsdk:"private_ip"`
	SecondaryPrivateIPs types.List   `tfsdk:"secondary_private_ips"`
	PublicIP            types.String `tfsdk:"public_ip"`
	PublicDNS           types.String `tfsdk:"public_dns"`
	AvailabilityZone    types.String `tfsdk:"availability_zone"`
	Tags                types.Map    `tfsdk:"tags"`
}

var _ datasource.DataSourceWithConfigure = (*nodesDataSource)(nil)

func (d *nodesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_nodes"
}

func (d *nodesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *nodesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Finds EC2 instances by tag (running ones by default), the way wsdirect nodes find each other with -join-ec2-tag.",
		Attributes: map[string]schema.Attribute{
			"tags": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				Description: "Tags an instance must all carry, with these values.",
			},
			"state": schema.StringAttribute{
				Optional:    true,
				Description: `Instance state to match. Default "running".`,
				Validators: []validator.String{stringvalidator.OneOf(
					string(ec2types.InstanceStateNamePending), string(ec2types.InstanceStateNameRunning),
					string(ec2types.InstanceStateNameStopping), string(ec2types.InstanceStateNameStopped),
					string(ec2types.InstanceStateNameShuttingDown), string(ec2types.InstanceStateNameTerminated))},
			},
			"ids": schema.ListAttribute{
				ElementType: types.StringType, Computed: true,
				Description: "IDs of the matching instances, sorted.",
			},
			"nodes": schema.ListNestedAttribute{
				Computed:    true,
				Description: "The matching instances, sorted by ID.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"id":                    schema.StringAttribute{Computed: true, Description: "Instance ID."},
						"private_ip":            schema.StringAttribute{Computed: true, Description: "Primary private IPv4 address."},
						"secondary_private_ips": schema.ListAttribute{ElementType: types.StringType, Computed: true, Description: "Secondary private IPv4 addresses of the primary interface, in address order."},
						"public_ip":             schema.StringAttribute{Computed: true, Description: "Public IPv4 address, if any."},
						"public_dns":            schema.StringAttribute{Computed: true, Description: "Public DNS name, if any."},
						"availability_zone":     schema.StringAttribute{Computed: true, Description: "Availability zone."},
						"tags":                  schema.MapAttribute{ElementType: types.StringType, Computed: true, Description: "All tags of the instance."},
					},
				},
			},
		},
	}
}

func (d *nodesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m nodesDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if d.data == nil {
		resp.Diagnostics.AddError("Provider not configured", "The wsdirect provider configuration is not known yet.")
		return
	}
	state := m.State.ValueString()
	if state == "" {
		state = string(ec2types.InstanceStateNameRunning)
	}
	filters := []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{state}}}
	tags := mapStrings(ctx, m.Tags, &resp.Diagnostics)
	for _, k := range sortedKeys(tags) {
		filters = append(filters, ec2types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}

	var instances []ec2types.Instance
	pages := ec2.NewDescribeInstancesPaginator(d.data.ec2, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(100)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			resp.Diagnostics.AddError("Listing nodes", fmt.Sprintf("DescribeInstances: %v", err))
			return
		}
		for _, r := range out.Reservations {
			instances = append(instances, r.Instances...)
		}
	}
	sort.Slice(instances, func(i, j int) bool {
		return aws.ToString(instances[i].InstanceId) < aws.ToString(instances[j].InstanceId)
	})

	m.Nodes = make([]nodeItemModel, 0, len(instances))
	ids := make([]string, 0, len(instances))
	for i := range instances {
		inst := &instances[i]
		id := aws.ToString(inst.InstanceId)
		ids = append(ids, id)
		item := nodeItemModel{
			ID:                  types.StringValue(id),
			PrivateIP:           stringOrNull(aws.ToString(inst.PrivateIpAddress)),
			SecondaryPrivateIPs: stringListValue(orderIPs(nil, secondaryIPs(primaryENI(inst)))),
			PublicIP:            stringOrNull(aws.ToString(inst.PublicIpAddress)),
			PublicDNS:           stringOrNull(aws.ToString(inst.PublicDnsName)),
			AvailabilityZone:    types.StringNull(),
			Tags:                stringMapValue(tagMap(inst.Tags)),
		}
		if inst.Placement != nil {
			item.AvailabilityZone = stringOrNull(aws.ToString(inst.Placement.AvailabilityZone))
		}
		m.Nodes = append(m.Nodes, item)
	}
	m.IDs = stringListValue(ids)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
