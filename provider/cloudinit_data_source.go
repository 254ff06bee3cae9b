package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/secret"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
)

var _ datasource.DataSource = (*cloudInitDataSource)(nil)

// NewCloudInitDataSource returns the wsdirect_cloudinit data source:
// provider::wsdirect::cloudinit for Terraform before 1.8.
func NewCloudInitDataSource() datasource.DataSource { return &cloudInitDataSource{} }

type cloudInitDataSource struct{}

type cloudInitModel struct {
	ID                      types.String `tfsdk:"id"`
	Rendered                types.String `tfsdk:"rendered"`
	Role                    types.String `tfsdk:"role"`
	ReleaseURL              types.String `tfsdk:"release_url"`
	SHA256                  types.String `tfsdk:"sha256"`
	GossipKeyParameter      types.String `tfsdk:"gossip_key_parameter"`
	JoinTag                 types.String `tfsdk:"join_tag"`
	Bind                    types.String `tfsdk:"bind"`
	GossipBind              types.String `tfsdk:"gossip_bind"`
	Name                    types.String `tfsdk:"name"`
	Advertise               types.String `tfsdk:"advertise"`
	MaxConns                types.Int64  `tfsdk:"max_conns"`
	AuthPublicKeys          types.String `tfsdk:"auth_public_keys"`
	AuthPublicKeysParameter types.String `tfsdk:"auth_public_keys_parameter"`
	Upstream                types.String `tfsdk:"upstream"`
	SigningKeyParameter     types.String `tfsdk:"signing_key_parameter"`
	UsersParameter          types.String `tfsdk:"users_parameter"`
	AdminTokenParameter     types.String `tfsdk:"admin_token_parameter"`
	TLS                     types.String `tfsdk:"tls"`
	TLSNames                types.List   `tfsdk:"tls_names"`
	TLSCertFile             types.String `tfsdk:"tls_cert_file"`
	TLSKeyFile              types.String `tfsdk:"tls_key_file"`
	TLSKeyParameter         types.String `tfsdk:"tls_key_parameter"`
	ACMEEmail               types.String `tfsdk:"acme_email"`
	ACMEDirectory           types.String `tfsdk:"acme_directory"`
	ACMEProfile             types.String `tfsdk:"acme_profile"`
	ACMECARoot              types.String `tfsdk:"acme_ca_root"`
	AdvertisePort           types.Int64  `tfsdk:"advertise_port"`
	DrainRate               types.Int64  `tfsdk:"drain_rate"`
	DrainDeadline           types.String `tfsdk:"drain_deadline"`
}

func (d *cloudInitDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cloudinit"
}

func (d *cloudInitDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(key string, required bool, v ...validator.String) schema.StringAttribute {
		return schema.StringAttribute{
			Required: required, Optional: !required,
			MarkdownDescription: cloudInitOptionDocs[key], Validators: v,
		}
	}
	param := func(key string, required bool) schema.StringAttribute {
		return str(key, required, parameterNameValidator{})
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Renders `#cloud-config` user data that installs `wsdirect-node` or `wsdirect-auth` from a release URL, " +
			"writes a systemd unit with the right flags, and starts it. Same output as the `provider::wsdirect::cloudinit` function, " +
			"for Terraform versions before 1.8. The user data holds no secret, only the names of the AWS Systems Manager Parameter " +
			"Store parameters the binaries read with the instance role (at start and on `SIGHUP`): the instance profile needs " +
			"`ssm:GetParameter` on them, `kms:Decrypt` on their key and `ec2:DescribeInstances` (the cluster module outputs such a policy).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "SHA-256 (hex) of `rendered`.",
			},
			"rendered": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The user data, ready for `wsdirect_node.user_data`. It holds parameter names, no secret.",
			},
			"role": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "`node` or `auth`.",
				Validators:          []validator.String{stringvalidator.OneOf(userdata.RoleNode, userdata.RoleAuth)},
			},
			"release_url":                str("release_url", true),
			"sha256":                     str("sha256", false),
			"gossip_key_parameter":       param("gossip_key_parameter", true),
			"join_tag":                   str("join_tag", true),
			"bind":                       str("bind", false),
			"gossip_bind":                str("gossip_bind", false),
			"name":                       str("name", false),
			"advertise":                  str("advertise", false),
			"auth_public_keys":           str("auth_public_keys", false),
			"auth_public_keys_parameter": param("auth_public_keys_parameter", false),
			"upstream":                   str("upstream", false),
			"signing_key_parameter":      param("signing_key_parameter", false),
			"users_parameter":            param("users_parameter", false),
			"admin_token_parameter":      param("admin_token_parameter", false),
			"max_conns": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: cloudInitOptionDocs["max_conns"],
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"drain_rate": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: cloudInitOptionDocs["drain_rate"],
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"drain_deadline": str("drain_deadline", false),
			"tls":            str("tls", false, stringvalidator.OneOf(userdata.TLSACME, userdata.TLSFiles, userdata.TLSOffload, userdata.TLSOff)),
			"tls_names": schema.ListAttribute{
				Optional:            true,
				ElementType:         types.StringType,
				MarkdownDescription: strings.Replace(cloudInitOptionDocs["tls_names"], ", comma-separated", " (a list here; comma-separated in the function)", 1),
			},
			"tls_cert_file":     str("tls_cert_file", false),
			"tls_key_file":      str("tls_key_file", false),
			"tls_key_parameter": param("tls_key_parameter", false),
			"acme_email":        str("acme_email", false),
			"acme_directory":    str("acme_directory", false),
			"acme_profile":      str("acme_profile", false),
			"acme_ca_root":      str("acme_ca_root", false),
			"advertise_port": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: cloudInitOptionDocs["advertise_port"],
				Validators:          []validator.Int64{int64validator.Between(1, 65535)},
			},
		},
	}
}

func (d *cloudInitDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m cloudInitModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cfg := cloudInitDefaults(m.Role.ValueString(), m.TLS)
	intSetting := func(v types.Int64) types.String {
		if v.IsNull() {
			return types.StringNull()
		}
		return types.StringValue(strconv.FormatInt(v.ValueInt64(), 10))
	}
	tlsNames := types.StringNull()
	if !m.TLSNames.IsNull() {
		var names []string
		resp.Diagnostics.Append(m.TLSNames.ElementsAs(ctx, &names, false)...)
		if resp.Diagnostics.HasError() {
			return
		}
		tlsNames = types.StringValue(strings.Join(names, ","))
	}
	settings := map[string]types.String{
		"release_url": m.ReleaseURL, "sha256": m.SHA256, "gossip_key_parameter": m.GossipKeyParameter, "join_tag": m.JoinTag,
		"bind": m.Bind, "gossip_bind": m.GossipBind, "name": m.Name, "advertise": m.Advertise, "max_conns": intSetting(m.MaxConns),
		"auth_public_keys": m.AuthPublicKeys, "auth_public_keys_parameter": m.AuthPublicKeysParameter, "upstream": m.Upstream,
		"signing_key_parameter": m.SigningKeyParameter, "users_parameter": m.UsersParameter, "admin_token_parameter": m.AdminTokenParameter,
		"tls": m.TLS, "tls_names": tlsNames, "tls_cert_file": m.TLSCertFile, "tls_key_file": m.TLSKeyFile, "tls_key_parameter": m.TLSKeyParameter,
		"acme_email": m.ACMEEmail, "acme_directory": m.ACMEDirectory, "acme_profile": m.ACMEProfile, "acme_ca_root": m.ACMECARoot,
		"advertise_port": intSetting(m.AdvertisePort), "drain_rate": intSetting(m.DrainRate), "drain_deadline": m.DrainDeadline,
	}
	for _, key := range sortedCloudInitKeys() {
		if v := settings[key]; !v.IsNull() {
			if err := applyCloudInitSetting(&cfg, key, v.ValueString()); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root(key), "Invalid cloud-init setting", err.Error())
			}
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := userdata.Render(cfg)
	if err != nil {
		resp.Diagnostics.AddError("Invalid cloud-init settings", err.Error())
		return
	}
	sum := sha256.Sum256([]byte(out))
	m.ID = types.StringValue(hex.EncodeToString(sum[:]))
	m.Rendered = types.StringValue(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// parameterNameValidator checks an SSM parameter name at plan time, so a
// typo fails in Terraform rather than at the instance's boot.
type parameterNameValidator struct{}

func (parameterNameValidator) Description(context.Context) string {
	return "value must be an SSM Parameter Store name, e.g. /wsdirect/prod/gossip-key"
}

func (v parameterNameValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (parameterNameValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	name := req.ConfigValue.ValueString()
	if strings.HasPrefix(name, secret.Scheme) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid parameter name",
			fmt.Sprintf("Give the parameter name without %s, e.g. %q.", secret.Scheme, strings.TrimPrefix(name, secret.Scheme)))
		return
	}
	if err := secret.CheckParameterName(name); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid parameter name", err.Error())
	}
}
