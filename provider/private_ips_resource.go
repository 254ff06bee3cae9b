package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// privateIPsTimeout bounds each operation, mostly the wait for a network
// interface created in the same apply to become visible.
const privateIPsTimeout = 5 * time.Minute

// NewPrivateIPsResource returns the wsdirect_private_ips resource.
func NewPrivateIPsResource() resource.Resource { return &privateIPsResource{} }

type privateIPsResource struct {
	data *providerData
}

// privateIPsModel is the state and plan of wsdirect_private_ips.
type privateIPsModel struct {
	ID                      types.String `tfsdk:"id"`
	NetworkInterfaceID      types.String `tfsdk:"network_interface_id"`
	SecondaryPrivateIPCount types.Int64  `tfsdk:"secondary_private_ip_count"`
	PrivateIPs              types.List   `tfsdk:"private_ips"`
}

var (
	_ resource.ResourceWithConfigure        = (*privateIPsResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*privateIPsResource)(nil)
	_ resource.ResourceWithImportState      = (*privateIPsResource)(nil)
	_ resource.ResourceWithConfigValidators = (*privateIPsResource)(nil)
)

func (r *privateIPsResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_private_ips"
}

func (r *privateIPsResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *privateIPsResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Secondary private IPv4 addresses on an existing network interface, such as an HAProxy host made elsewhere. " +
			"The resource manages only the addresses it assigned (or, imported, those its import ID names); others on the interface are left alone.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, Description: "The network interface ID.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"network_interface_id": schema.StringAttribute{
				Required: true, Description: "Network interface (eni-...) to add the addresses to. Changing it replaces the resource.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"secondary_private_ip_count": schema.Int64Attribute{
				Optional: true, Computed: true,
				Description: "Number of addresses EC2 picks, assigned and unassigned in place. Conflicts with private_ips; " +
					"when the list is given this reports its length.",
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"private_ips": schema.ListAttribute{
				ElementType: types.StringType, Optional: true, Computed: true,
				Description: "Explicit, ordered addresses, or with a count the addresses EC2 picked.",
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.UniqueValues(),
					listvalidator.ValueStringsAre(ipv4Validator{}),
				},
			},
		},
	}
}

func (r *privateIPsResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("secondary_private_ip_count"), path.MatchRoot("private_ips")),
	}
}

func (r *privateIPsResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan, config privateIPsModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	var state *privateIPsModel
	if !req.State.Raw.IsNull() {
		state = &privateIPsModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	replacing := state != nil && !plan.NetworkInterfaceID.Equal(state.NetworkInterfaceID)
	if replacing {
		state = nil
	}
	switch {
	case !config.PrivateIPs.IsNull():
		if config.PrivateIPs.IsUnknown() {
			plan.SecondaryPrivateIPCount = types.Int64Unknown()
		} else {
			plan.SecondaryPrivateIPCount = types.Int64Value(int64(len(config.PrivateIPs.Elements())))
		}
	default:
		if state != nil && !plan.SecondaryPrivateIPCount.IsUnknown() &&
			plan.SecondaryPrivateIPCount.Equal(state.SecondaryPrivateIPCount) && !state.PrivateIPs.IsNull() {
			plan.PrivateIPs = state.PrivateIPs
		} else {
			plan.PrivateIPs = types.ListUnknown(types.StringType)
		}
	}
	if state == nil {
		plan.ID = types.StringUnknown()
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)

	// Limit check: look up the interface's instance type.
	if resp.Diagnostics.HasError() || r.data == nil || plan.NetworkInterfaceID.IsUnknown() || plan.SecondaryPrivateIPCount.IsUnknown() {
		return
	}
	requested := int(plan.SecondaryPrivateIPCount.ValueInt64())
	var managed []string
	if state != nil {
		if state.SecondaryPrivateIPCount.ValueInt64() >= int64(requested) {
			return // not growing
		}
		managed = listStrings(ctx, state.PrivateIPs, &resp.Diagnostics)
	}
	if err := r.checkLimit(ctx, plan.NetworkInterfaceID.ValueString(), managed, requested); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("secondary_private_ip_count"), "Too many private IPs for the instance type", err.Error())
	}
}

// checkLimit checks that the interface's other addresses plus requested fit
// the attached instance's type. Interfaces that do not exist yet or are not
// attached are left to EC2 to judge at apply.
func (r *privateIPsResource) checkLimit(ctx context.Context, eniID string, managed []string, requested int) error {
	eni, err := describeENI(ctx, r.data.ec2, eniID)
	if err != nil || eni.Attachment == nil || aws.ToString(eni.Attachment.InstanceId) == "" {
		return nil
	}
	instanceID := aws.ToString(eni.Attachment.InstanceId)
	inst, err := describeInstance(ctx, r.data.ec2, instanceID)
	if err != nil {
		return nil
	}
	limit, err := ipv4PerInterface(ctx, r.data.ec2, string(inst.InstanceType))
	if err != nil {
		return nil
	}
	others := 0 // non-primary addresses this resource does not manage
	for _, a := range eni.PrivateIpAddresses {
		if !aws.ToBool(a.Primary) && !contains(managed, aws.ToString(a.PrivateIpAddress)) {
			others++
		}
	}
	if err := checkIPv4Limit(string(inst.InstanceType), limit, others+requested); err != nil {
		return fmt.Errorf("network interface %s of %s already has %d other secondary address(es) and %d more were asked for: %w",
			eniID, instanceID, others, requested, err)
	}
	return nil
}

func (r *privateIPsResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan privateIPsModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, privateIPsTimeout)
	defer cancel()
	eniID := plan.NetworkInterfaceID.ValueString()
	in := &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID)}
	explicit := listStrings(ctx, plan.PrivateIPs, &resp.Diagnostics)
	if len(explicit) > 0 {
		in.PrivateIpAddresses = explicit
	} else {
		in.SecondaryPrivateIpAddressCount = aws.Int32(int32(plan.SecondaryPrivateIPCount.ValueInt64()))
	}
	assigned, err := assignIPs(ctx, r.data.ec2, in)
	plan.ID = types.StringValue(eniID)
	plan.PrivateIPs = stringListValue(assigned)
	if err != nil {
		resp.Diagnostics.AddError("Assigning private IPs", err.Error())
		if len(assigned) > 0 {
			// Recorded (tainted), so the destroy or replacement unassigns them.
			plan.SecondaryPrivateIPCount = types.Int64Value(int64(len(assigned)))
			resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		}
		return
	}
	m, found, err := r.refresh(ctx, &plan)
	if err == nil && !found {
		err = fmt.Errorf("network interface %s disappeared", eniID)
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading private IPs", err.Error())
		// The addresses are assigned: record them so destroy unassigns them.
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

func (r *privateIPsResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state privateIPsModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	if state.NetworkInterfaceID.IsNull() {
		state.NetworkInterfaceID = state.ID // import
	}
	m, found, err := r.refresh(ctx, &state)
	if err != nil {
		resp.Diagnostics.AddError("Reading private IPs", err.Error())
		return
	}
	if !found {
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

func (r *privateIPsResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state privateIPsModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, privateIPsTimeout)
	defer cancel()
	eniID := state.NetworkInterfaceID.ValueString()
	have := listStrings(ctx, state.PrivateIPs, &resp.Diagnostics)
	var assign, unassign []string
	assignCount := 0
	if !plan.PrivateIPs.IsUnknown() {
		assign, unassign = diffIPs(have, listStrings(ctx, plan.PrivateIPs, &resp.Diagnostics))
	} else if want := int(plan.SecondaryPrivateIPCount.ValueInt64()); want > len(have) {
		assignCount = want - len(have)
	} else if want < len(have) {
		unassign = have[want:]
	}
	if resp.Diagnostics.HasError() {
		return
	}
	if len(unassign) > 0 {
		if _, err := r.data.ec2.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{
			NetworkInterfaceId: aws.String(eniID), PrivateIpAddresses: unassign,
		}); err != nil {
			resp.Diagnostics.AddError("Unassigning private IPs", err.Error())
			return
		}
	}
	kept := complement(have, unassign)
	if len(assign) > 0 || assignCount > 0 {
		in := &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID)}
		if assignCount > 0 {
			in.SecondaryPrivateIpAddressCount = aws.Int32(int32(assignCount))
		} else {
			in.PrivateIpAddresses = assign
		}
		assigned, err := assignIPs(ctx, r.data.ec2, in)
		if assignCount > 0 {
			kept = append(kept, assigned...)
		}
		if err != nil {
			resp.Diagnostics.AddError("Assigning private IPs", err.Error())
			// Record what the resource holds now, so nothing assigned goes untracked.
			if assignCount == 0 {
				kept = append(kept, assigned...)
			}
			state.PrivateIPs = stringListValue(kept)
			state.SecondaryPrivateIPCount = types.Int64Value(int64(len(kept)))
			resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
			return
		}
	}
	if plan.PrivateIPs.IsUnknown() {
		plan.PrivateIPs = stringListValue(kept)
	}
	plan.ID = state.ID
	m, found, err := r.refresh(ctx, &plan)
	if err == nil && !found {
		err = fmt.Errorf("network interface %s disappeared", eniID)
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading private IPs", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

func (r *privateIPsResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state privateIPsModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !r.configured(&resp.Diagnostics) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, privateIPsTimeout)
	defer cancel()
	eniID := state.NetworkInterfaceID.ValueString()
	eni, err := describeENI(ctx, r.data.ec2, eniID)
	if isNotFound(err) {
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Deleting private IPs", err.Error())
		return
	}
	present := intersectIPs(listStrings(ctx, state.PrivateIPs, &resp.Diagnostics), eniSecondaryIPs(eni))
	if len(present) == 0 {
		return
	}
	_, err = r.data.ec2.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(eniID), PrivateIpAddresses: present,
	})
	if err != nil && !isNotFound(err) {
		resp.Diagnostics.AddError("Unassigning private IPs", err.Error())
	}
}

// ImportState takes "eni-…" (the resource adopts every secondary private IP
// of the interface) or "eni-…:ip,ip" (only those), like wsdirect_node; a
// wsdirect_private_ips holds at least one address, so "eni-…:" is refused.
func (r *privateIPsResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	imp, err := parseImportID(req.ID, "eni-", "a network interface ID")
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	if imp.listed && len(imp.secondaries) == 0 {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("%q lists no address: a wsdirect_private_ips holds at least one", req.ID))
		return
	}
	if len(imp.secondaries) > 0 {
		if !r.configured(&resp.Diagnostics) {
			return
		}
		eni, err := describeENI(ctx, r.data.ec2, imp.id)
		if err == nil {
			err = checkListedSecondaries(imp, imp.id, "", eniSecondaryIPs(eni))
		}
		if err != nil {
			resp.Diagnostics.AddError("Invalid import ID", err.Error())
			return
		}
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), imp.id)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("network_interface_id"), imp.id)...)
	if imp.listed {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("private_ips"), imp.secondaries)...)
	}
}

func (r *privateIPsResource) configured(diags *diag.Diagnostics) bool {
	if r.data == nil {
		diags.AddError("Provider not configured",
			"The wsdirect provider configuration is not known yet (it may depend on values known only after apply).")
		return false
	}
	return true
}

// refresh reads the interface. The resource manages the addresses in prior
// that are still there, in prior's order; on import (no prior list) it
// adopts every secondary address of the interface.
func (r *privateIPsResource) refresh(ctx context.Context, prior *privateIPsModel) (*privateIPsModel, bool, error) {
	eniID := prior.NetworkInterfaceID.ValueString()
	eni, err := describeENI(ctx, r.data.ec2, eniID)
	if isNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var diags diag.Diagnostics
	actual := eniSecondaryIPs(eni)
	var managed []string
	if prior.PrivateIPs.IsNull() || prior.PrivateIPs.IsUnknown() {
		managed = orderIPs(nil, actual)
	} else {
		managed = intersectIPs(listStrings(ctx, prior.PrivateIPs, &diags), actual)
	}
	if diags.HasError() {
		return nil, false, fmt.Errorf("reading private IPs: %v", diags)
	}
	m := *prior
	m.ID = types.StringValue(eniID)
	m.NetworkInterfaceID = types.StringValue(eniID)
	m.PrivateIPs = stringListValue(managed)
	m.SecondaryPrivateIPCount = types.Int64Value(int64(len(managed)))
	return &m, true, nil
}

func describeENI(ctx context.Context, api EC2API, id string) (*ec2types.NetworkInterface, error) {
	out, err := api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	if err != nil {
		return nil, err
	}
	for i := range out.NetworkInterfaces {
		if aws.ToString(out.NetworkInterfaces[i].NetworkInterfaceId) == id {
			return &out.NetworkInterfaces[i], nil
		}
	}
	return nil, fmt.Errorf("network interface %s: %w", id, errENINotFound)
}

func eniSecondaryIPs(eni *ec2types.NetworkInterface) []string {
	var out []string
	for _, a := range eni.PrivateIpAddresses {
		if !aws.ToBool(a.Primary) {
			out = append(out, aws.ToString(a.PrivateIpAddress))
		}
	}
	return out
}
