package provider

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
)

var _ function.Function = (*cloudInitFunction)(nil)

// NewCloudInitFunction returns provider::wsdirect::cloudinit.
func NewCloudInitFunction() function.Function { return &cloudInitFunction{} }

type cloudInitFunction struct{}

// cloudInitOptionDocs documents each settings key; the data source has an
// attribute of the same name for each.
var cloudInitOptionDocs = map[string]string{
	"release_url": "**Required.** `http`/`https` URL of the `wsdirect-node`/`wsdirect-auth` binary, or of a `.tar.gz` release archive holding it at its root.",
	"sha256":      "Hex SHA-256 of the file at `release_url`; when set, the download is verified before it is installed.",
	"gossip_key":  "**Required, sensitive.** Base64 of the 32-byte gossip encryption key (e.g. `openssl rand -base64 32`).",
	"join_tag":    "**Required.** `Key=Value` EC2 tag the members find each other by (`-join-ec2-tag`); tag every node and auth host with it.",
	"bind":        fmt.Sprintf("Service listen address. Default `%s` (node) or `%s` (auth).", userdata.DefaultNodeBind, userdata.DefaultAuthBind),
	"gossip_bind": fmt.Sprintf("Gossip listen address. Default `%s`.", userdata.DefaultGossipBind),
	"name":        "Node only. Member name. Default: the instance's host name (systemd `%H`), so one user data fits every node.",
	"advertise":   "Node only. Address clients are sent to, or `auto` (default) for the instance's public IPv4 from IMDSv2.",
	"max_conns":   "Node only. Connection cap of the node (`-max-conns`). Default: the binary's.",
	"auth_public_keys": "Node only, **required for nodes.** One or more Ed25519 `PUBLIC KEY` PEM blocks of the auth signing keys " +
		"(several during key rotation).",
	"upstream":    "Node only. `ws://` or `wss://` URL each client connection is relayed to.",
	"signing_key": "Auth only, **required for auth, sensitive.** Ed25519 PKCS#8 `PRIVATE KEY` PEM that signs connection tokens.",
	"users": "Auth only, **required for auth, sensitive.** Content of the bcrypt users file (lines from `wsdirect-auth hash-password`): " +
		"the auth service needs exactly one credential backend, and this is the one user data carries.",
	"admin_token": "Auth only, sensitive. Token protecting the admin API.",
}

func sortedCloudInitKeys() []string {
	keys := make([]string, 0, len(cloudInitOptionDocs))
	for k := range cloudInitOptionDocs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (f *cloudInitFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "cloudinit"
}

func (f *cloudInitFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	var opts strings.Builder
	for _, k := range sortedCloudInitKeys() {
		fmt.Fprintf(&opts, "\n  - `%s`: %s", k, cloudInitOptionDocs[k])
	}
	resp.Definition = function.Definition{
		Summary: "Renders cloud-init user data for a wsdirect node or auth host.",
		MarkdownDescription: "Renders `#cloud-config` user data that installs `wsdirect-node` or `wsdirect-auth` from a release URL, " +
			"writes its key files, writes a systemd unit with the right flags and starts it. The result contains the gossip key " +
			"(and, for auth, the signing key): Terraform marks it sensitive when the inputs are sensitive, and any `output` " +
			"holding it must be declared `sensitive = true`. The `wsdirect_cloudinit` data source renders the same text for " +
			"Terraform versions before 1.8.",
		Parameters: []function.Parameter{
			function.StringParameter{
				Name:                "role",
				MarkdownDescription: "`node` or `auth`.",
			},
			function.MapParameter{
				Name:                "settings",
				ElementType:         types.StringType,
				MarkdownDescription: "Settings (numbers may be given as numbers; null entries take the default):" + opts.String(),
			},
		},
		Return: function.StringReturn{},
	}
}

func (f *cloudInitFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var role string
	var settings map[string]types.String
	resp.Error = function.ConcatFuncErrors(req.Arguments.Get(ctx, &role, &settings))
	if resp.Error != nil {
		return
	}
	cfg := userdata.DefaultConfig(role)
	keys := make([]string, 0, len(settings))
	for k, v := range settings {
		// A null entry (e.g. an unset optional variable) means "default".
		if !v.IsNull() {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := applyCloudInitSetting(&cfg, k, settings[k].ValueString()); err != nil {
			resp.Error = function.NewArgumentFuncError(1, err.Error())
			return
		}
	}
	out, err := userdata.Render(cfg)
	if err != nil {
		resp.Error = function.NewFuncError("invalid cloud-init settings:\n" + err.Error())
		return
	}
	resp.Error = function.ConcatFuncErrors(resp.Result.Set(ctx, out))
}

// applyCloudInitSetting sets one setting by its Terraform name; the data
// source uses it too. c starts as userdata.DefaultConfig(role). An empty
// string keeps the default, like null: Terraform variables often default
// to "" for "unset". (Where the default is empty, keeping it and setting ""
// are the same.)
func applyCloudInitSetting(c *userdata.Config, key, value string) error {
	str := func(dst *string) {
		if value != "" {
			*dst = value
		}
	}
	switch key {
	case "release_url":
		str(&c.ReleaseURL)
	case "sha256":
		str(&c.SHA256)
	case "gossip_key":
		str(&c.GossipKey)
	case "join_tag":
		str(&c.JoinTag)
	case "bind":
		str(&c.Bind)
	case "gossip_bind":
		str(&c.GossipBind)
	case "name":
		str(&c.Name)
	case "advertise":
		str(&c.Advertise)
	case "max_conns":
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("setting %q: %q is not a whole number", key, value)
		}
		c.MaxConns = n
	case "auth_public_keys":
		str(&c.AuthPublicKeys)
	case "upstream":
		str(&c.Upstream)
	case "signing_key":
		str(&c.SigningKey)
	case "users":
		str(&c.Users)
	case "admin_token":
		str(&c.AdminToken)
	default:
		return fmt.Errorf("unknown setting %q; valid settings are %s", key, strings.Join(sortedCloudInitKeys(), ", "))
	}
	return nil
}
