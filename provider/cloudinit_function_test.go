package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	"go.yaml.in/yaml/v3"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// testKeyPEMs makes a fresh Ed25519 key pair as PEM.
func testKeyPEMs(t *testing.T) (pub, priv string) {
	t.Helper()
	pk, sk, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := token.EncodePublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.EncodePrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return string(p), string(s)
}

// cloudConfigCheck parses the rendered user data as YAML and looks for
// the given substrings in the systemd unit.
func cloudConfigCheck(unitPath string, execStart ...string) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		if !strings.HasPrefix(v, "#cloud-config\n") {
			return fmt.Errorf("no #cloud-config header:\n%s", v)
		}
		var doc struct {
			WriteFiles []struct {
				Path    string `yaml:"path"`
				Content string `yaml:"content"`
			} `yaml:"write_files"`
			RunCmd [][]string `yaml:"runcmd"`
		}
		if err := yaml.Unmarshal([]byte(v), &doc); err != nil {
			return fmt.Errorf("not YAML: %w", err)
		}
		for _, f := range doc.WriteFiles {
			if f.Path != unitPath {
				continue
			}
			for _, s := range execStart {
				if !strings.Contains(f.Content, s) {
					return fmt.Errorf("unit lacks %q:\n%s", s, f.Content)
				}
			}
			if len(doc.RunCmd) != 3 || strings.Join(doc.RunCmd[2], " ") != "systemctl enable --now "+unitPath[strings.LastIndex(unitPath, "/")+1:] {
				return fmt.Errorf("runcmd does not enable the unit: %v", doc.RunCmd)
			}
			return nil
		}
		return fmt.Errorf("no %s in write_files", unitPath)
	})
}

func TestCloudInitFunction(t *testing.T) {
	setupRenderingTest(t)
	pub, _ := testKeyPEMs(t)
	resource.UnitTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
		ProtoV6ProviderFactories: renderingProviderFactories,
		Steps: []resource.TestStep{
			{
				// Parameter names only: the result holds no secret, so
				// outputs need not be sensitive.
				Config: fmt.Sprintf(`
variable "auth_public_keys" {
  type    = string
  default = %q
}
output "node" {
  value = provider::wsdirect::cloudinit("node", {
    release_url          = "https://example.com/wsdirect-node_1.0.0_linux_amd64.tar.gz"
    gossip_key_parameter = "/wsdirect/test/gossip-key"
    join_tag             = "wsdirect:cluster=test"
    max_conns            = 40000
    auth_public_keys     = var.auth_public_keys
    upstream             = null
  })
}
output "node_keys_parameter" {
  value = provider::wsdirect::cloudinit("node", {
    release_url                = "https://example.com/wsdirect-node"
    gossip_key_parameter       = "/wsdirect/test/gossip-key"
    join_tag                   = "wsdirect:cluster=test"
    auth_public_keys_parameter = "/wsdirect/test/auth-public-keys"
    admin_token_parameter      = "/wsdirect/test/node-admin-token"
  })
}
output "auth" {
  value = provider::wsdirect::cloudinit("auth", {
    release_url           = "https://example.com/wsdirect-auth"
    sha256                = "%s"
    gossip_key_parameter  = "/wsdirect/test/gossip-key"
    join_tag              = "wsdirect:cluster=test"
    signing_key_parameter = "/wsdirect/test/signing-key"
    users_parameter       = "/wsdirect/test/users"
    admin_token_parameter = "/wsdirect/test/admin-token"
    tls_names             = "auth.example.com"
  })
}
`, pub, strings.Repeat("0", 64)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("node", cloudConfigCheck("/etc/systemd/system/wsdirect-node.service",
						"ExecStart=/usr/local/bin/wsdirect-node -name %H -bind 0.0.0.0:443 -advertise auto -gossip-bind 0.0.0.0:7946 "+
							"-gossip-key-file ssm:///wsdirect/test/gossip-key -join-ec2-tag wsdirect:cluster=test -auth-keys /etc/wsdirect/auth-keys.pem -max-conns 40000 "+
							"-tls acme -acme-http-bind 0.0.0.0:80 -acme-storage /var/lib/wsdirect/acme\n")),
					statecheck.ExpectKnownOutputValue("node_keys_parameter", cloudConfigCheck("/etc/systemd/system/wsdirect-node.service",
						"-auth-keys ssm:///wsdirect/test/auth-public-keys -admin-token-file ssm:///wsdirect/test/node-admin-token -tls acme ")),
					statecheck.ExpectKnownOutputValue("auth", cloudConfigCheck("/etc/systemd/system/wsdirect-auth.service",
						"ExecStart=/usr/local/bin/wsdirect-auth -name auth-%H -bind 0.0.0.0:443 -gossip-bind 0.0.0.0:7946 -gossip-key-file ssm:///wsdirect/test/gossip-key "+
							"-join-ec2-tag wsdirect:cluster=test -signing-key ssm:///wsdirect/test/signing-key -users ssm:///wsdirect/test/users "+
							"-admin-token-file ssm:///wsdirect/test/admin-token -tls acme -tls-names auth.example.com -acme-http-bind 0.0.0.0:80 -acme-storage /var/lib/wsdirect/acme\n")),
				},
			},
		},
	})
}

func TestCloudInitFunctionErrors(t *testing.T) {
	setupRenderingTest(t)
	pub, _ := testKeyPEMs(t)
	base := fmt.Sprintf(`release_url = "https://example.com/x", gossip_key_parameter = "/c/gossip-key", join_tag = "k=v", auth_public_keys = %q`, pub)
	cases := map[string]struct{ role, extra, want string }{
		"bad role":        {"haproxy", "", `role "haproxy" is not supported`},
		"ftp url":         {"node", `, release_url = "ftp://example.com/x"`, `must use scheme http or https`},
		"unknown key":     {"node", `, maxconns = 5`, `unknown setting "maxconns"`},
		"bad max conns":   {"node", `, max_conns = "many"`, `"many" is not a whole number`},
		"secret value":    {"node", `, gossip_key = "AAAA"`, `setting "gossip_key" was removed: secrets no longer go into user data`},
		"signing key pem": {"auth", `, signing_key = "-----BEGIN PRIVATE KEY-----"`, `give its name in "signing_key_parameter"`},
		"bad name":        {"node", `, gossip_key_parameter = "wsdirect/x"`, `must start with '/'`},
		"auth w/o key":    {"auth", `, auth_public_keys = null, users_parameter = "/c/users"`, `signing key parameter is required`},
		"auth w/o users":  {"auth", `, auth_public_keys = null, signing_key_parameter = "/c/signing-key"`, `users parameter is required`},
		"bad join tag":    {"node", `, join_tag = "cluster"`, `must be "Key=Value"`},
		"bad public key":  {"node", `, auth_public_keys = "nope"`, `no PUBLIC KEY PEM block found`},
		"bad tls":         {"node", `, tls = "maybe"`, `tls "maybe" is not supported`},
		"plain in cloud":  {"node", `, tls = "off"`, `tls "off" needs a loopback bind`},
		"bad port":        {"node", `, advertise_port = "https"`, `"https" is not a whole number`},
		"bad drain rate":  {"node", `, drain_rate = "fast"`, `"fast" is not a whole number`},
		"bad deadline":    {"node", `, drain_deadline = "soon"`, `"soon" is not a duration`},
		"long deadline":   {"node", `, drain_deadline = "5m"`, `drain deadline must be whole seconds`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
				ProtoV6ProviderFactories: renderingProviderFactories,
				Steps: []resource.TestStep{{
					Config: fmt.Sprintf("output \"ud\" {\n  value = provider::wsdirect::cloudinit(%q, merge({ %s }, { %s }))\n}\n",
						tc.role, base, strings.TrimPrefix(tc.extra, ", ")),
					ExpectError: regexp.MustCompile(strings.ReplaceAll(regexp.QuoteMeta(tc.want), " ", `\s+`)),
				}},
			})
		})
	}
}

func TestApplyCloudInitSetting(t *testing.T) {
	var c userdata.Config
	if err := applyCloudInitSetting(&c, "max_conns", " 123 "); err != nil || c.MaxConns != 123 {
		t.Fatalf("max_conns: %v %d", err, c.MaxConns)
	}
	if err := applyCloudInitSetting(&c, "gossip", "x"); err == nil || !strings.Contains(err.Error(), "valid settings are") {
		t.Fatalf("unknown key: %v", err)
	}
	for old, repl := range removedCloudInitSettings {
		err := applyCloudInitSetting(&c, old, "secret-value")
		if err == nil || !strings.Contains(err.Error(), repl) || strings.Contains(err.Error(), "secret-value") {
			t.Errorf("%s: %v", old, err)
		}
		if _, ok := cloudInitOptionDocs[repl]; !ok {
			t.Errorf("%s points at %s, which is no setting", old, repl)
		}
	}
}

// TestCloudInitSettingsMatchDataSource keeps function keys and data source
// attributes in step, and checks nothing takes a secret value any more.
func TestCloudInitSettingsMatchDataSource(t *testing.T) {
	var resp datasource.SchemaResponse
	NewCloudInitDataSource().Schema(context.Background(), datasource.SchemaRequest{}, &resp)
	for _, k := range sortedCloudInitKeys() {
		if _, ok := resp.Schema.Attributes[k]; !ok {
			t.Errorf("setting %q has no data source attribute", k)
		}
	}
	for k, a := range resp.Schema.Attributes {
		if _, ok := cloudInitOptionDocs[k]; !ok && k != "id" && k != "rendered" && k != "role" {
			t.Errorf("data source attribute %q is not a function setting", k)
		}
		if _, removed := removedCloudInitSettings[k]; removed {
			t.Errorf("data source still takes the secret %q", k)
		}
		if a.IsSensitive() {
			t.Errorf("attribute %q is sensitive, but nothing here is a secret", k)
		}
	}
}
