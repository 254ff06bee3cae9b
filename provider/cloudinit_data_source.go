package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
)

var _ datasource.DataSource = (*cloudInitDataSource)(nil)

// NewCloudInitDataSource returns the wsdirect_cloudinit data source:
// provider::wsdirect::cloudinit for Terraform before 1.8.
func NewCloudInitDataSource() datasource.DataSource { return &cloudInitDataSource{} }

type cloudInitDataSource struct{}

type cloudInitModel struct {
	ID             types.String `tfsdk:"id"`
	Rendered       types.String `tfsdk:"rendered"`
	Role           types.String `tfsdk:"role"`
	ReleaseURL     types.String `tfsdk:"release_url"`
	SHA256         types.String `tfsdk:"sha256"`
	GossipKey      types.String `tfsdk:"gossip_key"`
	JoinTag        types.String `tfsdk:"join_tag"`
	Bind           types.String `tfsdk:"bind"`
	GossipBind     types.String `tfsdk:"gossip_bind"`
	Name           types.String `tfsdk:"name"`
	Advertise      types.String `tfsdk:"advertise"`
	MaxConns       types.Int64  `tfsdk:"max_conns"`
	AuthPublicKeys types.String `tfsdk:"auth_public_keys"`
	Upstream       types.String `tfsdk:"upstream"`
	SigningKey     types.String `tfsdk:"signing_key"`
	Users          types.String `tfsdk:"users"`
	AdminToken     types.String `tfsdk:"admin_token"`
	TLS            types.String `tfsdk:"tls"`
	TLSNames       types.List   `tfsdk:"tls_names"`
	TLSCertFile    types.String `tfsdk:"tls_cert_file"`
	TLSKeyFile     types.String `tfsdk:"tls_key_file"`
	ACMEEmail      types.String `tfsdk:"acme_email"`
	ACMEDirectory  types.String `tfsdk:"acme_directory"`
	ACMEProfile    types.String `tfsdk:"acme_profile"`
	ACMECARoot     types.String `tfsdk:"acme_ca_root"`
	AdvertisePort  types.Int64  `tfsdk:"advertise_port"`
}

func (d *cloudInitDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cloudinit"
}

func (d *cloudInitDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(key string, required, sensitive bool, v ...validator.String) schema.StringAttribute {
		return schema.StringAttribute{
			Required: required, Optional: !required, Sensitive: sensitive,
			MarkdownDescription: cloudInitOptionDocs[key], Validators: v,
		}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Renders `#cloud-config` user data that installs `wsdirect-node` or `wsdirect-auth` from a release URL, " +
			"writes its key files and a systemd unit with the right flags, and starts it. Same output as the " +
			"`provider::wsdirect::cloudinit` function, for Terraform versions before 1.8. `rendered` holds the gossip key " +
			"(and for auth the signing key), so it is sensitive.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "SHA-256 (hex) of `rendered`.",
			},
			"rendered": schema.StringAttribute{
				Computed:            true,
				Sensitive:           true,
				MarkdownDescription: "The user data, ready for `wsdirect_node.user_data`. Sensitive: it contains the secrets.",
			},
			"role": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "`node` or `auth`.",
				Validators:          []validator.String{stringvalidator.OneOf(userdata.RoleNode, userdata.RoleAuth)},
			},
			"release_url":      str("release_url", true, false),
			"sha256":           str("sha256", false, false),
			"gossip_key":       str("gossip_key", true, true),
			"join_tag":         str("join_tag", true, false),
			"bind":             str("bind", false, false),
			"gossip_bind":      str("gossip_bind", false, false),
			"name":             str("name", false, false),
			"advertise":        str("advertise", false, false),
			"auth_public_keys": str("auth_public_keys", false, false),
			"upstream":         str("upstream", false, false),
			"signing_key":      str("signing_key", false, true),
			"users":            str("users", false, true),
			"admin_token":      str("admin_token", false, true),
			"max_conns": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: cloudInitOptionDocs["max_conns"],
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"tls": str("tls", false, false, stringvalidator.OneOf(userdata.TLSACME, userdata.TLSFiles, userdata.TLSOffload, userdata.TLSOff)),
			"tls_names": schema.ListAttribute{
				Optional:            true,
				ElementType:         types.StringType,
				MarkdownDescription: strings.Replace(cloudInitOptionDocs["tls_names"], ", comma-separated", " (a list here; comma-separated in the function)", 1),
			},
			"tls_cert_file":  str("tls_cert_file", false, false),
			"tls_key_file":   str("tls_key_file", false, false),
			"acme_email":     str("acme_email", false, false),
			"acme_directory": str("acme_directory", false, false),
			"acme_profile":   str("acme_profile", false, false),
			"acme_ca_root":   str("acme_ca_root", false, false),
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
		"release_url": m.ReleaseURL, "sha256": m.SHA256, "gossip_key": m.GossipKey, "join_tag": m.JoinTag,
		"bind": m.Bind, "gossip_bind": m.GossipBind, "name": m.Name, "advertise": m.Advertise, "max_conns": intSetting(m.MaxConns),
		"auth_public_keys": m.AuthPublicKeys, "upstream": m.Upstream, "signing_key": m.SigningKey, "users": m.Users,
		"admin_token": m.AdminToken, "tls": m.TLS, "tls_names": tlsNames, "tls_cert_file": m.TLSCertFile,
		"tls_key_file": m.TLSKeyFile, "acme_email": m.ACMEEmail, "acme_directory": m.ACMEDirectory,
		"acme_profile": m.ACMEProfile, "acme_ca_root": m.ACMECARoot, "advertise_port": intSetting(m.AdvertisePort),
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
