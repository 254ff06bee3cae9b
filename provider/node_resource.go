package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Default operation timeouts of wsdirect_node.
const (
	nodeCreateTimeout = 10 * time.Minute
	nodeUpdateTimeout = 10 * time.Minute
	nodeDeleteTimeout = 10 * time.Minute
)

// NewNodeResource returns the wsdirect_node resource.
func NewNodeResource() resource.Resource { return &nodeResource{} }

type nodeResource struct {
	data *providerData
}

var (
	_ resource.ResourceWithConfigure      = (*nodeResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*nodeResource)(nil)
	_ resource.ResourceWithImportState    = (*nodeResource)(nil)
	_ resource.ResourceWithValidateConfig = (*nodeResource)(nil)
)

func (r *nodeResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_node"
}

func (r *nodeResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *nodeResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		Description: "One EC2 instance with a primary network interface carrying optional secondary private IPs and public IPs, " +
			"ready to serve as a wsdirect node, HAProxy host or auth host. It owns, and so changes and releases, only the secondary " +
			"private IPs it records and the Elastic IPs tagged with its instance ID.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, Description: "Instance ID.",
				PlanModifiers: keep,
			},
			"ami": schema.StringAttribute{
				Required: true, Description: "AMI ID. Changing it replaces the instance.",
				PlanModifiers: replace,
			},
			"instance_type": schema.StringAttribute{
				Required: true, Description: "Instance type; it bounds the number of private IPv4 addresses per interface. Changing it replaces the instance.",
				PlanModifiers: replace,
			},
			"subnet_id": schema.StringAttribute{
				Required: true, Description: "Subnet of the primary network interface. Changing it replaces the instance.",
				PlanModifiers: replace,
			},
			"security_group_ids": schema.SetAttribute{
				ElementType: types.StringType, Optional: true, Computed: true,
				Description:   "Security groups of the primary network interface, updated in place. Defaults to the VPC's default group.",
				PlanModifiers: []planmodifier.Set{setplanmodifier.UseStateForUnknown()},
				Validators:    []validator.Set{setvalidator.SizeAtLeast(1)},
			},
			"key_name": schema.StringAttribute{
				Optional: true, Description: "EC2 key pair name.",
				PlanModifiers: replace,
			},
			"iam_instance_profile": schema.StringAttribute{
				Optional: true, Description: "IAM instance profile name (or ARN).",
				PlanModifiers: replace,
			},
			"secondary_private_ip_count": schema.Int64Attribute{
				Optional: true, Computed: true,
				Description: "Number of secondary private IPs EC2 picks, assigned and unassigned in place (a smaller count unassigns the " +
					"last addresses of secondary_private_ips). Conflicts with secondary_private_ips; when the list is given this reports its " +
					"length. The node owns only the addresses it assigned or adopted on import, so a wsdirect_private_ips on the same " +
					"interface can add more.",
				Validators: []validator.Int64{
					int64validator.AtLeast(0),
					int64validator.ConflictsWith(path.MatchRoot("secondary_private_ips")),
				},
			},
			"secondary_private_ips": schema.ListAttribute{
				ElementType: types.StringType, Optional: true, Computed: true,
				Description: "Explicit, ordered secondary private IPs, assigned and unassigned in place keeping the order. " +
					"Conflicts with secondary_private_ip_count; when the count is given this lists the addresses EC2 picked. " +
					"Either way it holds exactly the secondary addresses the node owns; others on the interface are left alone.",
				Validators: []validator.List{
					listvalidator.UniqueValues(),
					listvalidator.ValueStringsAre(ipv4Validator{}),
					listvalidator.ConflictsWith(path.MatchRoot("secondary_private_ip_count")),
				},
			},
			"public_ip": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(publicIPNone),
				Description: `Public IPv4 mode: "none" (default), "auto" (an address assigned at launch) or "elastic" (an Elastic IP ` +
					`allocated and associated by this resource; one already on the primary address is kept, whoever allocated it). ` +
					`Changing it replaces the instance. The address itself is public_ip_address.`,
				Validators:    []validator.String{stringvalidator.OneOf(publicIPNone, publicIPAuto, publicIPElastic)},
				PlanModifiers: replace,
			},
			"elastic_ip_key": schema.StringAttribute{
				Optional: true,
				Description: `With public_ip = "elastic": a name for the primary Elastic IP that outlives the instance. Create takes ` +
					`over the Elastic IP tagged wsdirect:eip-key = <key> (moving it from the instance this one replaces, with ` +
					`lifecycle { create_before_destroy = true }) instead of allocating one, and makes it this instance's own, so ` +
					`the replaced instance's destroy leaves it; the first create allocates and tags it. The address, and so a ` +
					`service's URL, stays the same across replacements. Changing it replaces the instance.`,
				Validators:    []validator.String{stringvalidator.RegexMatches(eipKeyRe, "must be 1-128 letters, digits, spaces or _.:/=+-@")},
				PlanModifiers: replace,
			},
			"elastic_ip_per_secondary": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: `Also allocate one Elastic IP for each secondary private IP. Requires public_ip = "elastic".`,
			},
			"user_data": schema.StringAttribute{
				Optional: true, Sensitive: true,
				Description: "Raw user data (not base64). Changing it replaces the instance. Sensitive, so plans and logs do not " +
					"show it; but anything on the instance and anyone allowed ec2:DescribeInstanceAttribute can read it, and the " +
					"state holds it, so it must not carry secrets (wsdirect_cloudinit renders user data that names Parameter " +
					"Store parameters instead).",
				PlanModifiers: replace,
			},
			"metadata_options": metadataOptionsSchema(),
			"tags": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				Description: "Tags of the instance, merged over the provider's default_tags.",
			},
			"tags_all": schema.MapAttribute{
				ElementType: types.StringType, Computed: true,
				Description: "All tags of the instance, default_tags included.",
			},
			"network_interface_id": schema.StringAttribute{
				Computed: true, Description: "ID of the primary network interface.", PlanModifiers: keep,
			},
			"private_ip": schema.StringAttribute{
				Computed: true, Description: "Primary private IPv4 address.", PlanModifiers: keep,
			},
			"public_ip_address": schema.StringAttribute{
				Computed: true, Description: "Public IPv4 address actually associated with the primary private IP, if any.", PlanModifiers: keep,
			},
			"public_dns": schema.StringAttribute{
				Computed: true, Description: "Public DNS name, if any.", PlanModifiers: keep,
			},
			"elastic_ip_allocation_ids": schema.MapAttribute{
				ElementType: types.StringType, Computed: true,
				Description: "Elastic IP allocation IDs associated with the node's own private IPs (the primary and its secondary_private_ips), " +
					"keyed by private IP, whoever allocated them. Destroy releases only the node's own: those tagged wsdirect:node = its instance ID.",
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			},
			"availability_zone": schema.StringAttribute{
				Computed: true, Description: "Availability zone of the instance.", PlanModifiers: keep,
			},
			"state": schema.StringAttribute{
				Computed: true, Description: "Instance state, e.g. running.", PlanModifiers: keep,
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts":       timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
			"wait_for_ready": waitForReadySchema(),
		},
	}
}

func (r *nodeResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var perSecondary types.Bool
	var mode types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("elastic_ip_per_secondary"), &perSecondary)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("public_ip"), &mode)...)
	if resp.Diagnostics.HasError() || mode.IsUnknown() {
		return
	}
	if perSecondary.ValueBool() && mode.ValueString() != publicIPElastic {
		resp.Diagnostics.AddAttributeError(path.Root("elastic_ip_per_secondary"), "Invalid attribute combination",
			fmt.Sprintf(`elastic_ip_per_secondary = true requires public_ip = "elastic", got %q.`, mode.ValueString()))
	}
	var ready types.Object
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("wait_for_ready"), &ready)...)
	if !ready.IsNull() && !ready.IsUnknown() {
		// Not Required in the schema: a required attribute of an absent
		// single block is demanded all the same.
		if u, ok := ready.Attributes()["url"].(types.String); ok && u.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("wait_for_ready").AtName("url"), "Missing attribute",
				"wait_for_ready.url is required in a wait_for_ready block.")
		}
	}
	var key types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("elastic_ip_key"), &key)...)
	if !key.IsNull() && !key.IsUnknown() && mode.ValueString() != publicIPElastic {
		resp.Diagnostics.AddAttributeError(path.Root("elastic_ip_key"), "Invalid attribute combination",
			fmt.Sprintf(`elastic_ip_key requires public_ip = "elastic", got %q.`, mode.ValueString()))
	}
}

// ModifyPlan reconciles the count/list pair, computes tags_all, plans what an
// update keeps and what it changes, and checks the instance type's
// IPv4-per-interface limit.
func (r *nodeResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan, config nodeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	var state *nodeModel
	if !req.State.Raw.IsNull() {
		state = &nodeModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}

	// Secondary IPs: exactly one of count and list drives the other.
	switch {
	case config.SecondaryPrivateIPs.IsNull() && config.SecondaryPrivateIPCount.IsNull():
		plan.SecondaryPrivateIPCount = types.Int64Value(0)
		plan.SecondaryPrivateIPs = stringListValue(nil)
	case !config.SecondaryPrivateIPs.IsNull():
		if config.SecondaryPrivateIPs.IsUnknown() {
			plan.SecondaryPrivateIPCount = types.Int64Unknown()
		} else {
			plan.SecondaryPrivateIPCount = types.Int64Value(int64(len(config.SecondaryPrivateIPs.Elements())))
		}
	default: // count given
		plan.SecondaryPrivateIPs = planCountSecondaries(state, plan.SecondaryPrivateIPCount)
	}

	// tags_all = default_tags overlaid with tags.
	// Unknown while the tags or the provider's default_tags are.
	if plan.Tags.IsUnknown() || r.data == nil {
		plan.TagsAll = types.MapUnknown(types.StringType)
	} else {
		plan.TagsAll = stringMapValue(mergeTags(r.data.defaultTags, mapStrings(ctx, plan.Tags, &resp.Diagnostics)))
	}

	// Elastic IPs of an in-place update: unknown only where they can change.
	if state != nil && !plan.ID.IsUnknown() && plan.PublicIP.ValueString() == publicIPElastic {
		planElasticIPs(ctx, &plan, state, &resp.Diagnostics)
	}

	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}

	// Limit check, only when something it depends on changes.
	requested := -1
	switch {
	case !plan.SecondaryPrivateIPCount.IsUnknown():
		requested = int(plan.SecondaryPrivateIPCount.ValueInt64())
	case !plan.SecondaryPrivateIPs.IsUnknown():
		requested = len(plan.SecondaryPrivateIPs.Elements())
	}
	if requested <= 0 || plan.InstanceType.IsUnknown() || r.data == nil {
		return
	}
	if state != nil && state.InstanceType.Equal(plan.InstanceType) && state.SecondaryPrivateIPCount.ValueInt64() >= int64(requested) {
		return
	}
	limit, err := ipv4PerInterface(ctx, r.data.ec2, plan.InstanceType.ValueString())
	if err != nil {
		if hasCode(err, "InvalidInstanceType") {
			resp.Diagnostics.AddAttributeError(path.Root("instance_type"), "Unknown instance type", err.Error())
		} else {
			resp.Diagnostics.AddWarning("Could not check the private IP limit", err.Error())
		}
		return
	}
	if err := checkIPv4Limit(plan.InstanceType.ValueString(), limit, requested); err != nil {
		at := path.Root("secondary_private_ip_count")
		if !config.SecondaryPrivateIPs.IsNull() {
			at = path.Root("secondary_private_ips")
		}
		resp.Diagnostics.AddAttributeError(at, "Too many private IPs for the instance type", err.Error())
	}
}

func (r *nodeResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan nodeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, nodeCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	api := r.data.ec2

	token, err := newClientToken()
	if err != nil {
		resp.Diagnostics.AddError("Creating node", err.Error())
		return
	}
	mode := plan.PublicIP.ValueString()
	ni := ec2types.InstanceNetworkInterfaceSpecification{
		DeviceIndex:              aws.Int32(0),
		SubnetId:                 plan.SubnetID.ValueStringPointer(),
		DeleteOnTermination:      aws.Bool(true),
		AssociatePublicIpAddress: aws.Bool(mode == publicIPAuto),
		Groups:                   setStrings(ctx, plan.SecurityGroupIDs, &resp.Diagnostics),
	}
	explicit := listStrings(ctx, plan.SecondaryPrivateIPs, &resp.Diagnostics)
	if plan.SecondaryPrivateIPs.IsUnknown() && plan.SecondaryPrivateIPCount.ValueInt64() > 0 {
		ni.SecondaryPrivateIpAddressCount = aws.Int32(int32(plan.SecondaryPrivateIPCount.ValueInt64()))
	}
	// An explicit list goes in as non-primary entries; EC2 picks the
	// primary address from the subnet as usual.
	for _, ip := range explicit {
		ni.PrivateIpAddresses = append(ni.PrivateIpAddresses, ec2types.PrivateIpAddressSpecification{
			PrivateIpAddress: aws.String(ip), Primary: aws.Bool(false),
		})
	}
	in := &ec2.RunInstancesInput{
		ImageId:           plan.AMI.ValueStringPointer(),
		InstanceType:      ec2types.InstanceType(plan.InstanceType.ValueString()),
		MinCount:          aws.Int32(1),
		MaxCount:          aws.Int32(1),
		ClientToken:       aws.String(token),
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{ni},
	}
	if v := plan.KeyName.ValueString(); v != "" {
		in.KeyName = aws.String(v)
	}
	if v := plan.IAMInstanceProfile.ValueString(); v != "" {
		if strings.HasPrefix(v, "arn:") {
			in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String(v)}
		} else {
			in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String(v)}
		}
	}
	if v := plan.UserData.ValueString(); v != "" {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(v)))
	}
	in.MetadataOptions = metadataOptionsRequest(plan.metadataOptions(ctx, &resp.Diagnostics))
	tags := mergeTags(r.data.defaultTags, mapStrings(ctx, plan.Tags, &resp.Diagnostics))
	if len(tags) > 0 {
		in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: ec2Tags(tags)}}
	}
	if resp.Diagnostics.HasError() {
		return
	}

	out, err := api.RunInstances(ctx, in)
	if err != nil {
		resp.Diagnostics.AddError("Creating node: RunInstances failed", err.Error())
		return
	}
	if len(out.Instances) != 1 || out.Instances[0].InstanceId == nil {
		resp.Diagnostics.AddError("Creating node: RunInstances failed", fmt.Sprintf("expected one instance, got %d", len(out.Instances)))
		return
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	plan.ID = types.StringValue(id)

	// From here on the instance exists: on any error, save what we know so
	// Terraform records it (tainted) and a destroy or replace removes it.
	fail := func(summary string, err error) {
		resp.Diagnostics.AddError(summary, err.Error())
		saved := plan
		// The create deadline may be what failed; read with a fresh one.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if m, found, rerr := refreshNode(rctx, api, id, &plan, r.data.defaultTags); rerr == nil && found {
			saved = *m
		}
		saved.nullUnknowns()
		resp.Diagnostics.Append(resp.State.Set(ctx, &saved)...)
	}

	inst, err := waitInstanceRunning(ctx, api, id)
	if err != nil {
		fail("Creating node: waiting for the instance", err)
		return
	}
	eni := primaryENI(inst)
	if eni == nil {
		fail("Creating node", fmt.Errorf("instance %s has no network interface", id))
		return
	}
	plan.NetworkInterfaceID = types.StringPointerValue(eni.NetworkInterfaceId)
	plan.PrivateIP = types.StringPointerValue(eni.PrivateIpAddress)

	// The interface must carry what was asked for; if not, the node is
	// saved tainted (a replacement or destroy terminates it) and the error
	// says what is missing.
	secondaries, err := launchedSecondaries(id, eni, explicit, int(plan.SecondaryPrivateIPCount.ValueInt64()))
	if err != nil {
		plan.SecondaryPrivateIPs = stringListValue(secondaries)
		fail("Creating node: the launched interface lacks secondary private IPs", err)
		return
	}
	plan.SecondaryPrivateIPs = stringListValue(secondaries)
	eipKey := plan.ElasticIPKey.ValueString()
	tookOver := false
	if eipKey != "" && mode == publicIPElastic {
		if tookOver, err = takeOverKeyedEIP(ctx, api, eipKey, id, aws.ToString(eni.NetworkInterfaceId), plan.PrivateIP.ValueString()); err != nil {
			fail("Creating node: taking over the keyed Elastic IP", err)
			return
		}
	}
	if targets := plan.eipTargets(secondaries); len(targets) > 0 {
		warn, err := syncEIPs(ctx, api, id, aws.ToString(eni.NetworkInterfaceId), nodeIPs(plan.PrivateIP.ValueString(), secondaries), targets, tags)
		resp.Diagnostics.Append(warn...)
		if err != nil {
			fail("Creating node: associating Elastic IPs", err)
			return
		}
	}
	if eipKey != "" && mode == publicIPElastic && !tookOver {
		if err := tagKeyedEIP(ctx, api, eipKey, aws.ToString(eni.NetworkInterfaceId), plan.PrivateIP.ValueString()); err != nil {
			fail("Creating node: tagging the keyed Elastic IP", err)
			return
		}
	}

	m, found, err := refreshNode(ctx, api, id, &plan, r.data.defaultTags)
	if err == nil && !found {
		err = fmt.Errorf("instance %s disappeared after creation", id)
	}
	if err != nil {
		fail("Creating node: reading the instance", err)
		return
	}
	if w := plan.waitForReady(ctx, &resp.Diagnostics); w != nil {
		url, err := readyURL(w.URL.ValueString(), m.PublicIPAddress.ValueString(), m.PrivateIP.ValueString())
		if err == nil {
			err = pollReady(ctx, id, url, w.readyTimeout())
		}
		if err != nil {
			plan = *m
			fail("Creating node: waiting for the instance to be ready", err)
			return
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

func (r *nodeResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state nodeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	m, found, err := refreshNode(ctx, r.data.ec2, state.ID.ValueString(), &state, r.data.defaultTags)
	if err != nil {
		resp.Diagnostics.AddError("Reading node", err.Error())
		return
	}
	if !found {
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

func (r *nodeResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state nodeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, nodeUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	api := r.data.ec2
	id := state.ID.ValueString()
	planned := plan // what the plan promised, checked against the outcome

	inst, err := describeInstance(ctx, api, id)
	if err != nil {
		resp.Diagnostics.AddError("Updating node: describing the instance", err.Error())
		return
	}
	eni := primaryENI(inst)
	if eni == nil {
		resp.Diagnostics.AddError("Updating node", fmt.Sprintf("instance %s has no network interface", id))
		return
	}
	eniID := aws.ToString(eni.NetworkInterfaceId)

	// Security groups.
	wantSGs := setStrings(ctx, plan.SecurityGroupIDs, &resp.Diagnostics)
	if !plan.SecurityGroupIDs.IsUnknown() && !plan.SecurityGroupIDs.Equal(state.SecurityGroupIDs) && len(wantSGs) > 0 {
		if _, err := api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(eniID), Groups: wantSGs,
		}); err != nil {
			resp.Diagnostics.AddError("Updating node: security groups", err.Error())
			return
		}
	}

	// Secondary private IPs, against what the interface has now. The node
	// touches only the addresses it owns (see node_resource_ownership.go).
	have := intersectIPs(listStrings(ctx, state.SecondaryPrivateIPs, &resp.Diagnostics), secondaryIPs(eni))
	owned := have // what the node holds as changes are made
	var unassign []string
	var assign []string
	assignCount := 0
	if !plan.SecondaryPrivateIPs.IsUnknown() && !hasUnknownElement(plan.SecondaryPrivateIPs) {
		assign, unassign = diffIPs(have, listStrings(ctx, plan.SecondaryPrivateIPs, &resp.Diagnostics))
	} else if want := int(plan.SecondaryPrivateIPCount.ValueInt64()); want > len(have) {
		assignCount = want - len(have)
	} else if want < len(have) {
		unassign = have[want:] // drop from the end: earlier addresses keep their place
	}
	tagsAll := mergeTags(r.data.defaultTags, mapStrings(ctx, plan.Tags, &resp.Diagnostics))
	if resp.Diagnostics.HasError() {
		return
	}
	plan.ID = state.ID
	plan.PrivateIP = types.StringPointerValue(eni.PrivateIpAddress)
	primary := plan.PrivateIP.ValueString()

	// A failure after a change saves the node as it is then, with the
	// addresses it holds, so nothing it assigned goes untracked.
	fail := func(summary string, err error) {
		resp.Diagnostics.AddError(summary, err.Error())
		saved := plan
		saved.SecondaryPrivateIPs = stringListValue(owned)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		m, found, rerr := refreshNode(rctx, api, id, &saved, r.data.defaultTags)
		if rerr != nil || !found {
			return // Terraform keeps the prior state
		}
		m.nullUnknowns()
		resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
	}

	if len(unassign) > 0 {
		// Elastic IPs on addresses about to go are released first.
		if plan.PublicIP.ValueString() == publicIPElastic {
			warn, err := syncEIPs(ctx, api, id, eniID, nodeIPs(primary, have), plan.eipTargets(complement(have, unassign)), tagsAll)
			resp.Diagnostics.Append(warn...)
			if err != nil {
				fail("Updating node: releasing Elastic IPs of removed addresses", err)
				return
			}
		}
		if _, err := api.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{
			NetworkInterfaceId: aws.String(eniID), PrivateIpAddresses: unassign,
		}); err != nil {
			fail("Updating node: unassigning secondary private IPs", err)
			return
		}
		owned = complement(have, unassign)
	}
	if len(assign) > 0 || assignCount > 0 {
		in := &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID)}
		if assignCount > 0 {
			in.SecondaryPrivateIpAddressCount = aws.Int32(int32(assignCount))
		} else {
			in.PrivateIpAddresses = assign
		}
		added, err := assignIPs(ctx, api, in)
		owned = append(slices.Clone(owned), added...)
		if err != nil {
			fail("Updating node: assigning secondary private IPs", fmt.Errorf("instance %s: %w", id, err))
			return
		}
	}
	if plan.SecondaryPrivateIPs.IsUnknown() || hasUnknownElement(plan.SecondaryPrivateIPs) {
		plan.SecondaryPrivateIPs = stringListValue(owned)
	} else {
		// The configured order; owned holds the same addresses.
		owned = listStrings(ctx, plan.SecondaryPrivateIPs, &resp.Diagnostics)
	}

	// Instance metadata options, in place.
	if err := modifyMetadataOptions(ctx, api, id, plan.metadataOptions(ctx, &resp.Diagnostics), state.metadataOptions(ctx, &resp.Diagnostics)); err != nil {
		fail("Updating node: metadata options", err)
		return
	}

	// Tags.
	set, del := diffTags(tagMap(inst.Tags), tagsAll)
	if len(set) > 0 {
		if _, err := api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ec2Tags(set)}); err != nil {
			fail("Updating node: tags", err)
			return
		}
	}
	if len(del) > 0 {
		keys := make([]ec2types.Tag, len(del))
		for i, k := range del {
			keys[i] = ec2types.Tag{Key: aws.String(k)}
		}
		if _, err := api.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: keys}); err != nil {
			fail("Updating node: tags", err)
			return
		}
	}

	// Elastic IPs: re-read the interface so new secondaries are included.
	if plan.PublicIP.ValueString() == publicIPElastic {
		cur, err := describeInstance(ctx, api, id)
		if err != nil {
			fail("Updating node: describing the instance", err)
			return
		}
		secondaries := intersectIPs(owned, secondaryIPs(primaryENI(cur)))
		warn, err := syncEIPs(ctx, api, id, eniID, nodeIPs(primary, secondaries), plan.eipTargets(secondaries), tagsAll)
		resp.Diagnostics.Append(warn...)
		if err != nil {
			fail("Updating node: Elastic IPs", err)
			return
		}
	}

	m, found, err := refreshNode(ctx, api, id, &plan, r.data.defaultTags)
	if err == nil && !found {
		err = fmt.Errorf("instance %s disappeared during update", id)
	}
	if err != nil {
		fail("Updating node: reading the instance", err)
		return
	}
	if found := plannedMismatch(&planned, m); len(found) > 0 {
		resp.Diagnostics.AddError("Updating node: changed outside Terraform", mismatchError(id, found).Error())
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

func (r *nodeResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state nodeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, nodeDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	api := r.data.ec2
	id := state.ID.ValueString()

	// Elastic IPs first: the node's own, found by tag whether or not they
	// are still associated. Others stay allocated; EC2 disassociates them
	// when the instance terminates.
	if err := releaseNodeEIPs(ctx, api, id); err != nil {
		resp.Diagnostics.AddError("Deleting node: releasing Elastic IPs", err.Error())
		return
	}
	if _, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		if isNotFound(err) {
			return
		}
		resp.Diagnostics.AddError("Deleting node: TerminateInstances failed", err.Error())
		return
	}
	if err := waitInstanceTerminated(ctx, api, id); err != nil {
		resp.Diagnostics.AddError("Deleting node: waiting for termination", err.Error())
	}
}

// ImportState takes "i-…" (the node adopts every secondary private IP of
// the interface) or "i-…:ip,ip" (only those; "i-…:" none). See
// node_resource_ownership.go for what an imported node owns.
func (r *nodeResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	imp, err := parseImportID(req.ID, "i-", "an instance ID")
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	if imp.listed && r.configured(&resp.Diagnostics) {
		if err := checkImportedSecondaries(ctx, r.data.ec2, imp); err != nil {
			resp.Diagnostics.AddError("Invalid import ID", err.Error())
			return
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), imp.id)...)
	if imp.listed {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("secondary_private_ips"), imp.secondaries)...)
	}
}

func (r *nodeResource) configured(diags *diag.Diagnostics) bool {
	if r.data == nil {
		diags.AddError("Provider not configured",
			"The wsdirect provider configuration is not known yet (it may depend on values known only after apply).")
		return false
	}
	return true
}

// refreshNode reads the instance and its addresses into a model. prior gives
// what reading cannot: the user's IP order, which tags are the resource's
// own, the public IP mode, user-facing forms of names, and timeouts.
func refreshNode(ctx context.Context, api EC2API, id string, prior *nodeModel, defaultTags map[string]string) (*nodeModel, bool, error) {
	inst, err := describeInstance(ctx, api, id)
	if isNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	switch instanceState(inst) {
	case ec2types.InstanceStateNameTerminated, ec2types.InstanceStateNameShuttingDown:
		return nil, false, nil
	}
	var diags diag.Diagnostics
	m := *prior
	m.ID = types.StringValue(id)
	m.AMI = types.StringPointerValue(inst.ImageId)
	m.InstanceType = types.StringValue(string(inst.InstanceType))
	m.SubnetID = types.StringPointerValue(inst.SubnetId)
	m.KeyName = stringOrNull(aws.ToString(inst.KeyName))
	m.State = types.StringValue(string(instanceState(inst)))
	m.MetadataOptions = metadataOptionsState(inst.MetadataOptions, prior.MetadataOptions)
	m.AvailabilityZone = types.StringNull()
	if inst.Placement != nil {
		m.AvailabilityZone = stringOrNull(aws.ToString(inst.Placement.AvailabilityZone))
	}
	m.IAMInstanceProfile = types.StringNull()
	if inst.IamInstanceProfile != nil {
		arn := aws.ToString(inst.IamInstanceProfile.Arn)
		name := arn[strings.LastIndex(arn, "/")+1:]
		if p := prior.IAMInstanceProfile.ValueString(); p == arn || p == name {
			m.IAMInstanceProfile = types.StringValue(p)
		} else {
			m.IAMInstanceProfile = stringOrNull(name)
		}
	}

	eni := primaryENI(inst)
	if eni == nil {
		return nil, false, fmt.Errorf("instance %s has no network interface", id)
	}
	eniID := aws.ToString(eni.NetworkInterfaceId)
	m.NetworkInterfaceID = types.StringValue(eniID)
	m.PrivateIP = stringOrNull(aws.ToString(eni.PrivateIpAddress))
	if m.PrivateIP.IsNull() {
		m.PrivateIP = stringOrNull(aws.ToString(inst.PrivateIpAddress))
	}
	sgs := make([]string, 0, len(eni.Groups))
	for _, g := range eni.Groups {
		sgs = append(sgs, aws.ToString(g.GroupId))
	}
	m.SecurityGroupIDs = stringSetValue(sgs)

	// The node owns the secondary addresses it recorded (others may belong
	// to a wsdirect_private_ips on the same interface); with no record
	// (import by instance ID alone) it adopts all of them.
	var secondaries []string
	if prior.SecondaryPrivateIPs.IsNull() || prior.SecondaryPrivateIPs.IsUnknown() {
		secondaries = orderIPs(nil, secondaryIPs(eni))
	} else {
		secondaries = intersectIPs(listStrings(ctx, prior.SecondaryPrivateIPs, &diags), secondaryIPs(eni))
	}
	m.SecondaryPrivateIPs = stringListValue(secondaries)
	m.SecondaryPrivateIPCount = types.Int64Value(int64(len(secondaries)))

	all := tagMap(inst.Tags)
	m.TagsAll = stringMapValue(all)
	claimed := mapStrings(ctx, prior.Tags, &diags)
	own := ownTags(all, defaultTags, claimed)
	if len(own) == 0 && (prior.Tags.IsNull() || prior.Tags.IsUnknown()) {
		m.Tags = types.MapNull(types.StringType)
	} else {
		m.Tags = stringMapValue(own)
	}

	// Elastic IPs on the node's own addresses, keyed by private IP.
	addrs, err := api.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		return nil, false, fmt.Errorf("describing addresses: %w", err)
	}
	eips := map[string]string{}
	primaryEIP := ""
	mine := nodeIPs(m.PrivateIP.ValueString(), secondaries)
	for _, a := range addrs.Addresses {
		if aws.ToString(a.NetworkInterfaceId) != eniID || a.AllocationId == nil || !contains(mine, aws.ToString(a.PrivateIpAddress)) {
			continue
		}
		pip := aws.ToString(a.PrivateIpAddress)
		eips[pip] = aws.ToString(a.AllocationId)
		if pip == m.PrivateIP.ValueString() {
			primaryEIP = aws.ToString(a.PublicIp)
		}
	}
	m.ElasticIPAllocationIDs = stringMapValue(eips)
	m.PublicIPAddress = stringOrNull(aws.ToString(inst.PublicIpAddress))
	if primaryEIP != "" {
		m.PublicIPAddress = types.StringValue(primaryEIP)
	}
	m.PublicDNS = stringOrNull(aws.ToString(inst.PublicDnsName))

	// The public IP mode is configuration; infer it only on import.
	if prior.PublicIP.IsNull() || prior.PublicIP.IsUnknown() {
		switch {
		case primaryEIP != "":
			m.PublicIP = types.StringValue(publicIPElastic)
		case !m.PublicIPAddress.IsNull():
			m.PublicIP = types.StringValue(publicIPAuto)
		default:
			m.PublicIP = types.StringValue(publicIPNone)
		}
	}
	if prior.ElasticIPPerSecondary.IsNull() || prior.ElasticIPPerSecondary.IsUnknown() {
		per := false
		for _, ip := range secondaries {
			if _, ok := eips[ip]; ok {
				per = true
			}
		}
		m.ElasticIPPerSecondary = types.BoolValue(per)
	}

	ud, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData,
	})
	if err != nil {
		return nil, false, fmt.Errorf("describing user data: %w", err)
	}
	m.UserData = types.StringNull()
	if ud.UserData != nil && aws.ToString(ud.UserData.Value) != "" {
		raw, err := base64.StdEncoding.DecodeString(aws.ToString(ud.UserData.Value))
		if err != nil {
			return nil, false, fmt.Errorf("decoding user data: %w", err)
		}
		m.UserData = types.StringValue(string(raw))
	}
	if m.Timeouts.IsNull() || m.Timeouts.IsUnknown() {
		m.Timeouts = timeouts.Value{Object: types.ObjectNull(m.Timeouts.Object.AttributeTypes(ctx))}
	}
	if diags.HasError() {
		return nil, false, fmt.Errorf("reading node: %v", diags)
	}
	return &m, true, nil
}

// secondaryIPs lists the interface's non-primary private IPv4 addresses.
func secondaryIPs(eni *ec2types.InstanceNetworkInterface) []string {
	if eni == nil {
		return nil
	}
	var out []string
	for _, a := range eni.PrivateIpAddresses {
		if !aws.ToBool(a.Primary) {
			out = append(out, aws.ToString(a.PrivateIpAddress))
		}
	}
	return out
}

// eipKeyRe is what an EC2 tag value may hold, and not empty.
var eipKeyRe = regexp.MustCompile(`^[\p{L}\p{N} _.:/=+\-@]{1,128}$`)

// ipv4Validator checks that a string is a dotted-quad IPv4 address.
type ipv4Validator struct{}

func (ipv4Validator) Description(context.Context) string               { return "value must be an IPv4 address" }
func (v ipv4Validator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (ipv4Validator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	a, err := netip.ParseAddr(req.ConfigValue.ValueString())
	if err != nil || !a.Is4() {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid IPv4 address",
			fmt.Sprintf("%q is not an IPv4 address", req.ConfigValue.ValueString()))
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// complement returns the members of a not in b, in a's order.
func complement(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
