package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
)

var _ datasource.DataSource = (*haproxyConfigDataSource)(nil)

// NewHAProxyConfigDataSource returns the wsdirect_haproxy_config data
// source: provider::wsdirect::haproxy_config for Terraform before 1.8.
func NewHAProxyConfigDataSource() datasource.DataSource { return &haproxyConfigDataSource{} }

type haproxyConfigDataSource struct{}

type haproxyConfigModel struct {
	ID                  types.String          `tfsdk:"id"`
	Rendered            types.String          `tfsdk:"rendered"`
	Backends            []haproxyBackendModel `tfsdk:"backends"`
	SourceIPs           []types.String        `tfsdk:"source_ips"`
	Bind                types.String          `tfsdk:"bind"`
	Mode                types.String          `tfsdk:"mode"`
	Balance             types.String          `tfsdk:"balance"`
	MaxConn             types.Int64           `tfsdk:"maxconn"`
	ServerMaxConn       types.Int64           `tfsdk:"server_maxconn"`
	HealthCheckPath     types.String          `tfsdk:"health_check_path"`
	HealthCheckInterval types.String          `tfsdk:"health_check_interval"`
	HealthCheckFall     types.Int64           `tfsdk:"health_check_fall"`
	HealthCheckRise     types.Int64           `tfsdk:"health_check_rise"`
	TimeoutConnect      types.String          `tfsdk:"timeout_connect"`
	TimeoutClient       types.String          `tfsdk:"timeout_client"`
	TimeoutServer       types.String          `tfsdk:"timeout_server"`
	TimeoutTunnel       types.String          `tfsdk:"timeout_tunnel"`
	TimeoutClientFin    types.String          `tfsdk:"timeout_client_fin"`
	StatsSocket         types.String          `tfsdk:"stats_socket"`
	StatsBind           types.String          `tfsdk:"stats_bind"`
	Log                 types.String          `tfsdk:"log"`
	ServerNames         []types.String        `tfsdk:"server_names"`
}

func (d *haproxyConfigDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_haproxy_config"
}

func (d *haproxyConfigDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(key string, v ...validator.String) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, MarkdownDescription: haproxyOptionDocs[key], Validators: v}
	}
	num := func(key string, min int64) schema.Int64Attribute {
		return schema.Int64Attribute{Optional: true, MarkdownDescription: haproxyOptionDocs[key], Validators: []validator.Int64{int64validator.AtLeast(min)}}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Renders a complete `haproxy.cfg` for HAProxy in front of wsdirect nodes, with one `server` line per " +
			"(backend, source IP) pair and `source <ip>` on each, so every node can take about 64k × (number of source IPs) " +
			"connections. Same output as the `provider::wsdirect::haproxy_config` function, for Terraform versions before 1.8.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "SHA-256 (hex) of `rendered`.",
			},
			"rendered": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The complete `haproxy.cfg`.",
			},
			"server_names": schema.ListAttribute{
				Computed:            true,
				ElementType:         types.StringType,
				MarkdownDescription: "The rendered server names in order, e.g. `node1_src1`, `node1_src2`, ...",
			},
			"backends": schema.ListNestedAttribute{
				Required:            true,
				MarkdownDescription: "The wsdirect nodes to forward to.",
				Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"name": schema.StringAttribute{
							Optional:            true,
							MarkdownDescription: "Prefix of this node's server names (letters, digits, `_`, `-`, `.`). Default `node<N>`, N its 1-based position.",
						},
						"address": schema.StringAttribute{
							Required:            true,
							MarkdownDescription: "IP address (usually the private IP) or host name of the node.",
						},
						"port": schema.Int64Attribute{
							Optional:            true,
							MarkdownDescription: "The node's WebSocket port. Default `" + strconv.Itoa(haproxycfg.DefaultBackendPort) + "`.",
							Validators:          []validator.Int64{int64validator.Between(1, 65535)},
						},
					},
				},
			},
			"source_ips": schema.ListAttribute{
				Optional:    true,
				ElementType: types.StringType,
				MarkdownDescription: "IPs owned by the HAProxy host (e.g. its secondary private IPs), or environment references such " +
					"as `${SRC1}` that HAProxy expands at start-up. Each backend gets one server line per entry. Empty or unset: " +
					"one server line per backend.",
				Validators: []validator.List{listvalidator.UniqueValues()},
			},
			"bind":                  str("bind"),
			"mode":                  str("mode", stringvalidator.OneOf(haproxycfg.ModeHTTP, haproxycfg.ModeTCP)),
			"balance":               str("balance"),
			"maxconn":               num("maxconn", 1),
			"server_maxconn":        num("server_maxconn", 0),
			"health_check_path":     str("health_check_path"),
			"health_check_interval": str("health_check_interval"),
			"health_check_fall":     num("health_check_fall", 1),
			"health_check_rise":     num("health_check_rise", 1),
			"timeout_connect":       str("timeout_connect"),
			"timeout_client":        str("timeout_client"),
			"timeout_server":        str("timeout_server"),
			"timeout_tunnel":        str("timeout_tunnel"),
			"timeout_client_fin":    str("timeout_client_fin"),
			"stats_socket":          str("stats_socket"),
			"stats_bind":            str("stats_bind"),
			"log":                   str("log"),
		},
	}
}

func (d *haproxyConfigDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m haproxyConfigModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cfg := haproxycfg.DefaultConfig()
	for _, b := range m.Backends {
		cfg.Backends = append(cfg.Backends, b.backend())
	}
	for _, s := range m.SourceIPs {
		cfg.SourceIPs = append(cfg.SourceIPs, s.ValueString())
	}
	// Feed the optional attributes through the function's option parser so
	// the two can never disagree on meaning or defaults.
	strs := map[string]types.String{
		"bind": m.Bind, "mode": m.Mode, "balance": m.Balance, "health_check_path": m.HealthCheckPath,
		"health_check_interval": m.HealthCheckInterval, "timeout_connect": m.TimeoutConnect, "timeout_client": m.TimeoutClient,
		"timeout_server": m.TimeoutServer, "timeout_tunnel": m.TimeoutTunnel, "timeout_client_fin": m.TimeoutClientFin,
		"stats_socket": m.StatsSocket, "stats_bind": m.StatsBind, "log": m.Log,
	}
	ints := map[string]types.Int64{
		"maxconn": m.MaxConn, "server_maxconn": m.ServerMaxConn, "health_check_fall": m.HealthCheckFall, "health_check_rise": m.HealthCheckRise,
	}
	for _, key := range sortedOptionKeys() {
		var value string
		if v, ok := strs[key]; ok {
			if v.IsNull() {
				continue
			}
			value = v.ValueString()
		} else if v, ok := ints[key]; ok {
			if v.IsNull() {
				continue
			}
			value = strconv.FormatInt(v.ValueInt64(), 10)
		}
		if err := applyHAProxyOption(&cfg, key, value); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root(key), "Invalid HAProxy option", err.Error())
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := haproxycfg.Render(cfg)
	if err != nil {
		resp.Diagnostics.AddError("Invalid HAProxy configuration", err.Error())
		return
	}
	servers, err := cfg.Servers()
	if err != nil {
		resp.Diagnostics.AddError("Invalid HAProxy configuration", err.Error())
		return
	}
	m.ServerNames = make([]types.String, len(servers))
	for i, s := range servers {
		m.ServerNames[i] = types.StringValue(s.Name)
	}
	sum := sha256.Sum256([]byte(out))
	m.ID = types.StringValue(hex.EncodeToString(sum[:]))
	m.Rendered = types.StringValue(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
