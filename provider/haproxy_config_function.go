package provider

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
)

var _ function.Function = (*haproxyConfigFunction)(nil)

// NewHAProxyConfigFunction returns provider::wsdirect::haproxy_config.
func NewHAProxyConfigFunction() function.Function { return &haproxyConfigFunction{} }

type haproxyConfigFunction struct{}

// haproxyBackendAttrTypes is the object type of one backends element, shared
// with the data source's nested attribute.
var haproxyBackendAttrTypes = map[string]attr.Type{
	"name":    types.StringType,
	"address": types.StringType,
	"port":    types.Int64Type,
}

type haproxyBackendModel struct {
	Name    types.String `tfsdk:"name"`
	Address types.String `tfsdk:"address"`
	Port    types.Int64  `tfsdk:"port"`
}

// haproxyOptionDocs documents every key the options map accepts; the data
// source has an attribute of the same name for each.
var haproxyOptionDocs = map[string]string{
	"bind":                  fmt.Sprintf("Frontend listen address `host:port`; host `*` means all IPv4 addresses. Default `%s`.", haproxycfg.DefaultBind),
	"mode":                  "`http` (default: WebSocket upgrades proxied as HTTP, `X-Forwarded-For` added, HTTP health checks) or `tcp` (raw TCP like an NLB, TCP-connect health checks).",
	"balance":               "Load-balancing algorithm: `leastconn` (default), `roundrobin`, `source`, `random` or `random(N)`.",
	"maxconn":               fmt.Sprintf("Connection cap for the process and frontend. Default `%d`. HAProxy needs about two file descriptors per connection.", haproxycfg.DefaultMaxConn),
	"server_maxconn":        "Connection cap per server line, i.e. per (backend, source IP) pair. Default: none.",
	"health_check_path":     fmt.Sprintf("Path of the HTTP health check in `http` mode (`option httpchk GET <path>`, expecting 200). Default `%s`.", haproxycfg.DefaultHealthCheckPath),
	"health_check_interval": fmt.Sprintf("Time between health checks (`inter`), a Go duration such as `2s`. Default `%s`.", haproxycfg.FormatDuration(haproxycfg.DefaultHealthCheckInterval)),
	"health_check_fall":     fmt.Sprintf("Failed checks before a server is marked down. Default `%d`.", haproxycfg.DefaultHealthCheckFall),
	"health_check_rise":     fmt.Sprintf("Passed checks before a server is marked up. Default `%d`.", haproxycfg.DefaultHealthCheckRise),
	"timeout_connect":       fmt.Sprintf("`timeout connect`, a Go duration. Default `%s`.", haproxycfg.FormatDuration(haproxycfg.DefaultTimeoutConnect)),
	"timeout_client":        fmt.Sprintf("`timeout client`: client inactivity before the WebSocket upgrade. Default `%s`.", haproxycfg.FormatDuration(haproxycfg.DefaultTimeoutClient)),
	"timeout_server":        fmt.Sprintf("`timeout server`: node inactivity before the WebSocket upgrade. Default `%s`.", haproxycfg.FormatDuration(haproxycfg.DefaultTimeoutServer)),
	"timeout_tunnel":        fmt.Sprintf("`timeout tunnel`: inactivity limit of an upgraded WebSocket; must exceed the ping interval. Default `%s`.", haproxycfg.FormatDuration(haproxycfg.DefaultTimeoutTunnel)),
	"timeout_client_fin":    fmt.Sprintf("`timeout client-fin`: how long a half-closed client connection is kept. Default `%s`.", haproxycfg.FormatDuration(haproxycfg.DefaultTimeoutClientFin)),
	"stats_socket":          "Path of an admin-level stats socket in the global section, e.g. `/run/haproxy/admin.sock`. Default: none.",
	"stats_bind":            "`host:port` of a stats listener serving `/stats`, e.g. `127.0.0.1:8404`. Default: none.",
	"log":                   "Global log target, e.g. `/dev/log local0`; proxies then log through `log global`. Default: no logging.",
}

func sortedOptionKeys() []string {
	keys := make([]string, 0, len(haproxyOptionDocs))
	for k := range haproxyOptionDocs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (f *haproxyConfigFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "haproxy_config"
}

func (f *haproxyConfigFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	var opts strings.Builder
	for _, k := range sortedOptionKeys() {
		fmt.Fprintf(&opts, "\n  - `%s`: %s", k, haproxyOptionDocs[k])
	}
	resp.Definition = function.Definition{
		Summary: "Renders a complete haproxy.cfg with one server line per (backend, source IP) pair.",
		MarkdownDescription: "Renders a complete `haproxy.cfg` for HAProxy in front of wsdirect nodes (the HAProxy alternative " +
			"to direct assignment). Every backend gets one `server` line per source IP, each with `source <ip>`, so a node " +
			"can take about 64k × (number of source IPs) connections instead of 64k. The output passes `haproxy -c`. " +
			"The `wsdirect_haproxy_config` data source renders the same text for Terraform versions before 1.8.",
		Parameters: []function.Parameter{
			function.ListParameter{
				Name:        "backends",
				ElementType: types.ObjectType{AttrTypes: haproxyBackendAttrTypes},
				MarkdownDescription: "The nodes, as objects `{ name, address, port }`. `name` (letters, digits, `_`, `-`, `.`; " +
					"null for `node<N>`) prefixes the server names; `address` is an IP or host name; `port` " +
					fmt.Sprintf("(null for %d) is the node's WebSocket port.", haproxycfg.DefaultBackendPort),
			},
			function.ListParameter{
				Name:        "source_ips",
				ElementType: types.StringType,
				MarkdownDescription: "IPs owned by the HAProxy host (e.g. its secondary private IPs), or environment references " +
					"such as `${SRC1}` that HAProxy expands at start-up. May be empty: one server line per backend.",
			},
		},
		VariadicParameter: function.MapParameter{
			Name:                "options",
			ElementType:         types.StringType,
			MarkdownDescription: "At most one map of optional settings (numbers may be given as numbers; null entries take the default):" + opts.String(),
		},
		Return: function.StringReturn{},
	}
}

func (f *haproxyConfigFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var backends []haproxyBackendModel
	var sources []string
	var options []map[string]types.String
	resp.Error = function.ConcatFuncErrors(req.Arguments.Get(ctx, &backends, &sources, &options))
	if resp.Error != nil {
		return
	}
	if len(options) > 1 {
		resp.Error = function.NewArgumentFuncError(2, fmt.Sprintf("at most one options map may be given, got %d", len(options)))
		return
	}
	cfg := haproxycfg.DefaultConfig()
	cfg.SourceIPs = sources
	cfg.Backends = make([]haproxycfg.Backend, len(backends))
	for i, b := range backends {
		cfg.Backends[i] = b.backend()
	}
	if len(options) == 1 {
		keys := make([]string, 0, len(options[0]))
		for k, v := range options[0] {
			// A null entry (e.g. an unset optional variable) means "default".
			if !v.IsNull() {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := applyHAProxyOption(&cfg, k, options[0][k].ValueString()); err != nil {
				resp.Error = function.NewArgumentFuncError(2, err.Error())
				return
			}
		}
	}
	out, err := haproxycfg.Render(cfg)
	if err != nil {
		resp.Error = function.NewFuncError("invalid HAProxy configuration:\n" + err.Error())
		return
	}
	resp.Error = function.ConcatFuncErrors(resp.Result.Set(ctx, out))
}

// backend is b with a null port taken as haproxycfg.DefaultBackendPort (0
// too, as the function's objects have no validator) and a null name as
// empty: named by position.
func (b haproxyBackendModel) backend() haproxycfg.Backend {
	port := int(b.Port.ValueInt64())
	if port == 0 {
		port = haproxycfg.DefaultBackendPort
	}
	return haproxycfg.Backend{Name: b.Name.ValueString(), Address: b.Address.ValueString(), Port: port}
}

// applyHAProxyOption sets one option by its Terraform name. The data
// source feeds its attributes through here too, so both parse alike. c
// starts as haproxycfg.DefaultConfig(). An empty string or 0 keeps the
// default, like null (Terraform variables often default to "" or 0 for
// "unset"); where the default is empty or 0, keeping it is the same as
// setting the value.
func applyHAProxyOption(c *haproxycfg.Config, key, value string) error {
	str := func(dst *string) {
		if value != "" {
			*dst = value
		}
	}
	num := func(dst *int) error {
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("option %q: %q is not a whole number", key, value)
		}
		if n != 0 {
			*dst = n
		}
		return nil
	}
	dur := func(dst *time.Duration) error {
		d, err := time.ParseDuration(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("option %q: %q is not a duration such as \"5s\" or \"1h\"", key, value)
		}
		if d <= 0 {
			return fmt.Errorf("option %q: duration must be positive, got %q", key, value)
		}
		*dst = d
		return nil
	}
	switch key {
	case "bind":
		str(&c.Bind)
	case "mode":
		str(&c.Mode)
	case "balance":
		str(&c.Balance)
	case "maxconn":
		return num(&c.MaxConn)
	case "server_maxconn":
		return num(&c.ServerMaxConn)
	case "health_check_path":
		str(&c.HealthCheckPath)
	case "health_check_interval":
		return dur(&c.HealthCheckInterval)
	case "health_check_fall":
		return num(&c.HealthCheckFall)
	case "health_check_rise":
		return num(&c.HealthCheckRise)
	case "timeout_connect":
		return dur(&c.TimeoutConnect)
	case "timeout_client":
		return dur(&c.TimeoutClient)
	case "timeout_server":
		return dur(&c.TimeoutServer)
	case "timeout_tunnel":
		return dur(&c.TimeoutTunnel)
	case "timeout_client_fin":
		return dur(&c.TimeoutClientFin)
	case "stats_socket":
		str(&c.StatsSocket)
	case "stats_bind":
		str(&c.StatsBind)
	case "log":
		str(&c.Log)
	default:
		return fmt.Errorf("unknown option %q; valid options are %s", key, strings.Join(sortedOptionKeys(), ", "))
	}
	return nil
}
