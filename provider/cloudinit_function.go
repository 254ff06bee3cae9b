package provider

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

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
	"gossip_key_parameter": "**Required.** Name of the SSM Parameter Store `SecureString` parameter holding the base64 32-byte gossip key " +
		"(e.g. `/wsdirect/prod/gossip-key`, value from `openssl rand -base64 32`); several keys separated by newlines while rotating, the first in use.",
	"join_tag": "**Required.** `Key=Value` EC2 tag the members find each other by (`-join-ec2-tag`); tag every node and auth host with it.",
	"bind": fmt.Sprintf("Service listen address. Default `%s` with `tls` `acme` or `files` (the default), else `%s` (node) or `%s` (auth).",
		userdata.DefaultTLSBind, userdata.DefaultNodeBind, userdata.DefaultAuthBind),
	"gossip_bind": fmt.Sprintf("Gossip listen address. Default `%s`.", userdata.DefaultGossipBind),
	"name":        "Node only. Member name. Default: the instance's host name (systemd `%H`), so one user data fits every node.",
	"advertise":   "Node only. Address clients are sent to: `auto` (default) for the instance's public IPv4 from IMDSv2, an IP, or a DNS name (a label may be `%l`, the short host name, e.g. `%l.ws.example.com`).",
	"max_conns":   "Node only. Connection cap of the node (`-max-conns`). Default: the binary's.",
	"auth_public_keys": "Node only. One or more Ed25519 `PUBLIC KEY` PEM blocks of the auth signing keys (several during key rotation), " +
		"written into the user data (they are not secret). A node needs this or `auth_public_keys_parameter`.",
	"auth_public_keys_parameter": "Node only. Name of the parameter (`String` or `SecureString`) holding those PEM blocks, instead of " +
		"`auth_public_keys`: a signing key then rotates without new user data (update the parameter, `SIGHUP` the nodes).",
	"upstream": "Node only. `ws://` or `wss://` URL each client connection is relayed to.",
	"signing_key_parameter": "Auth only, **required for auth.** Name of the `SecureString` parameter holding the Ed25519 PKCS#8 " +
		"`PRIVATE KEY` PEM that signs connection tokens (`wsdirect-auth keygen` writes it as `signing.key`).",
	"users_parameter": "Auth only, **required for auth.** Name of the `SecureString` parameter holding the bcrypt users file " +
		"(lines from `wsdirect-auth hash-password`): the auth service needs exactly one credential backend, and this is the one " +
		"user data configures. A parameter holds 4 KB (8 KB in the Advanced tier), about 60 (120) users.",
	"admin_token_parameter": "Name of the `SecureString` parameter holding the admin API's bearer token (a node's `POST /admin/drain`, " +
		"the auth service's `GET /v1/nodes`). Unset: the admin API is off.",
	"tls": "How the service serves TLS (`-tls`): `acme` (default: it obtains and renews its own certificate from an ACME CA, " +
		"Let's Encrypt unless `acme_directory` says otherwise; a node gets an IP certificate for its advertised address), " +
		"`files` (a certificate and key already on the instance, see `tls_cert_file`), `offload` (plain listener, TLS " +
		"terminated in front; clients still use `wss://`), or `off` (plain text, only with a loopback `bind`). With `acme` and " +
		"`files` the default `bind` is `0.0.0.0:443`; `acme` also answers the http-01 challenge on port 80.",
	"tls_names": "Names and IPs of the certificate (`-tls-names`), comma-separated. Nodes default to their advertised address; " +
		"auth hosts with `tls = \"acme\"` get an IP certificate for their public IPv4 address without one (`-tls-names auto`, from instance " +
		"metadata), or name the DNS name clients reach auth by. A label may be `%H` or `%l`, systemd's host name and short host name.",
	"tls_cert_file": fmt.Sprintf("With `tls = \"files\"`: path on the instance of the PEM certificate chain. Default `%s`. "+
		"The certificate and its key are never part of the user data: bake them into the AMI or fetch them at boot.", userdata.DefaultTLSCertFile),
	"tls_key_file": fmt.Sprintf("With `tls = \"files\"`: path on the instance of the PEM private key. Default `%s` (none with `tls_key_parameter`).", userdata.DefaultTLSKeyFile),
	"tls_key_parameter": "With `tls = \"files\"`: name of the `SecureString` parameter holding the PEM private key, read by the binary with the instance role " +
		"instead of a key file (`-tls-key ssm:///name`); re-read on SIGHUP with the certificate file. The key never travels in user data.",
	"acme_email":     "With `tls = \"acme\"`: contact e-mail of the ACME account.",
	"acme_directory": "With `tls = \"acme\"`: `https` directory URL of the ACME CA. Default: Let's Encrypt production.",
	"acme_profile":   "With `tls = \"acme\"`: ACME profile. Default `shortlived` for IP certificates (the only profile Let's Encrypt issues them under), the CA's default for names.",
	"acme_ca_root":   "With `tls = \"acme\"`: PEM of an extra root CA to trust for the ACME directory (a private CA).",
	"advertise_port": "Node only. Port clients dial when it differs from the `bind` port, e.g. `443` on a TLS terminator in front (`tls = \"offload\"`).",
	"drain_rate": "Node only. Clients a drain closes per second (`-drain-rate`). Default: the binary's, 5,000. Lower it where every node " +
		"drains at once (a rolling replacement) onto auth hosts that take fewer: clients then wait on their old node, not disconnected.",
	"drain_deadline": fmt.Sprintf("Node only. How long a drain may take before the rest of the clients are cut (`-drain-deadline`), "+
		"whole seconds such as `45s`, at most %s. Default: the binary's, %s. The unit's `TimeoutStopSec` is this plus %s.",
		userdata.MaxDrainDeadline, userdata.DefaultDrainDeadline, userdata.StopMargin),
}

// removedCloudInitSettings were secret values; user data holds none now.
var removedCloudInitSettings = map[string]string{
	"gossip_key": "gossip_key_parameter", "signing_key": "signing_key_parameter",
	"users": "users_parameter", "admin_token": "admin_token_parameter",
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
			"writes a systemd unit with the right flags and starts it. The user data holds no secret: the gossip key, signing key, " +
			"users file and admin token stay in AWS Systems Manager Parameter Store as `SecureString` parameters, which the binaries " +
			"read at start and on `SIGHUP` with the instance role; the settings name those parameters. The instance profile needs " +
			"`ssm:GetParameter` on them, `kms:Decrypt` on their key and `ec2:DescribeInstances` (the cluster module outputs such a " +
			"policy). The `wsdirect_cloudinit` data source renders the same text for Terraform versions before 1.8.",
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
	cfg := cloudInitDefaults(role, settings["tls"])
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

// cloudInitDefaults is the Config the settings are applied to: the
// defaults of role under the TLS mode tls (userdata.DefaultTLS when null or
// empty), since the default bind and certificate paths depend on the mode.
func cloudInitDefaults(role string, tls types.String) userdata.Config {
	mode := userdata.DefaultTLS
	if v := tls.ValueString(); v != "" {
		mode = v
	}
	return userdata.DefaultConfigTLS(role, mode)
}

// applyCloudInitSetting sets one setting by its Terraform name; the data
// source uses it too. c starts as cloudInitDefaults(role, tls). An empty
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
	case "gossip_key_parameter":
		str(&c.GossipKeyParameter)
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
	case "auth_public_keys_parameter":
		str(&c.AuthPublicKeysParameter)
	case "upstream":
		str(&c.Upstream)
	case "signing_key_parameter":
		str(&c.SigningKeyParameter)
	case "users_parameter":
		str(&c.UsersParameter)
	case "admin_token_parameter":
		str(&c.AdminTokenParameter)
	case "tls":
		str(&c.TLS)
	case "tls_names":
		if value == "" {
			break
		}
		c.TLSNames = nil
		for _, n := range strings.Split(value, ",") {
			if n = strings.TrimSpace(n); n != "" {
				c.TLSNames = append(c.TLSNames, n)
			}
		}
	case "tls_cert_file":
		str(&c.TLSCertFile)
	case "tls_key_file":
		str(&c.TLSKeyFile)
	case "tls_key_parameter":
		if value != "" {
			c.TLSKeyParameter = value
			// The key comes from the parameter: the default key path goes
			// (settings are applied in name order, tls_key_file first, so an
			// explicit other path stays and is refused as "not both").
			if c.TLSKeyFile == userdata.DefaultTLSKeyFile {
				c.TLSKeyFile = ""
			}
		}
	case "acme_email":
		str(&c.ACMEEmail)
	case "acme_directory":
		str(&c.ACMEDirectory)
	case "acme_profile":
		str(&c.ACMEProfile)
	case "acme_ca_root":
		str(&c.ACMECARoot)
	case "drain_rate":
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("setting %q: %q is not a whole number", key, value)
		}
		c.DrainRate = n
	case "drain_deadline":
		if value == "" {
			break
		}
		d, err := time.ParseDuration(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("setting %q: %q is not a duration such as \"45s\"", key, value)
		}
		c.DrainDeadline = d
	case "advertise_port":
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("setting %q: %q is not a whole number", key, value)
		}
		c.AdvertisePort = n
	default:
		if repl, ok := removedCloudInitSettings[key]; ok {
			return fmt.Errorf("setting %q was removed: secrets no longer go into user data, where anything on the instance "+
				"and anyone allowed ec2:DescribeInstanceAttribute can read them. Store the value as an SSM SecureString "+
				"parameter and give its name in %q", key, repl)
		}
		return fmt.Errorf("unknown setting %q; valid settings are %s", key, strings.Join(sortedCloudInitKeys(), ", "))
	}
	return nil
}
