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

const testCloudInitGossipKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

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
	pub, priv := testKeyPEMs(t)
	resource.UnitTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
		ProtoV6ProviderFactories: renderingProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: fmt.Sprintf(`
variable "gossip_key" {
  type      = string
  sensitive = true
  default   = %q
}
variable "auth_public_keys" {
  type    = string
  default = %q
}
variable "signing_key" {
  type      = string
  sensitive = true
  default   = %q
}
output "node" {
  sensitive = true
  value = provider::wsdirect::cloudinit("node", {
    release_url      = "https://example.com/wsdirect-node_1.0.0_linux_amd64.tar.gz"
    gossip_key       = var.gossip_key
    join_tag         = "wsdirect:cluster=test"
    max_conns        = 40000
    auth_public_keys = var.auth_public_keys
    upstream         = null
  })
}
output "auth" {
  sensitive = true
  value = provider::wsdirect::cloudinit("auth", {
    release_url = "https://example.com/wsdirect-auth"
    sha256      = "%s"
    gossip_key  = var.gossip_key
    join_tag    = "wsdirect:cluster=test"
    signing_key = var.signing_key
    users       = "alice:$2a$10$abc\n"
    admin_token = "tok"
  })
}
`, testCloudInitGossipKey, pub, priv, strings.Repeat("0", 64)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("node", cloudConfigCheck("/etc/systemd/system/wsdirect-node.service",
						"ExecStart=/usr/local/bin/wsdirect-node -name %H -bind 0.0.0.0:8080 -advertise auto -gossip-bind 0.0.0.0:7946 "+
							"-gossip-key-file /etc/wsdirect/gossip.key -join-ec2-tag wsdirect:cluster=test -auth-keys /etc/wsdirect/auth-keys.pem -max-conns 40000\n")),
					statecheck.ExpectKnownOutputValue("auth", cloudConfigCheck("/etc/systemd/system/wsdirect-auth.service",
						"ExecStart=/usr/local/bin/wsdirect-auth -name auth-%H -bind 0.0.0.0:8443 -gossip-bind 0.0.0.0:7946 -gossip-key-file /etc/wsdirect/gossip.key "+
							"-join-ec2-tag wsdirect:cluster=test -signing-key /etc/wsdirect/signing-key.pem -users /etc/wsdirect/users -admin-token-file /etc/wsdirect/admin-token\n")),
				},
			},
			{
				// A result derived from the sensitive gossip key is itself
				// sensitive: an output that does not say so is refused.
				Config: fmt.Sprintf(`
variable "gossip_key" {
  type      = string
  sensitive = true
  default   = %q
}
output "node" {
  value = provider::wsdirect::cloudinit("node", {
    release_url      = "https://example.com/wsdirect-node"
    gossip_key       = var.gossip_key
    join_tag         = "wsdirect:cluster=test"
    auth_public_keys = %q
  })
}
`, testCloudInitGossipKey, pub),
				ExpectError: regexp.MustCompile(`Output refers to sensitive values`),
			},
		},
	})
}

func TestCloudInitFunctionErrors(t *testing.T) {
	setupRenderingTest(t)
	pub, _ := testKeyPEMs(t)
	base := fmt.Sprintf(`release_url = "https://example.com/x", gossip_key = %q, join_tag = "k=v", auth_public_keys = %q`, testCloudInitGossipKey, pub)
	cases := map[string]struct{ role, extra, want string }{
		"bad role":       {"haproxy", "", `role "haproxy" is not supported`},
		"ftp url":        {"node", `, release_url = "ftp://example.com/x"`, `must use scheme http or https`},
		"unknown key":    {"node", `, maxconns = 5`, `unknown setting "maxconns"`},
		"bad max conns":  {"node", `, max_conns = "many"`, `"many" is not a whole number`},
		"short key":      {"node", `, gossip_key = "AAAA"`, `exactly 32 bytes`},
		"auth w/o key":   {"auth", `, auth_public_keys = null`, `signing key is required`},
		"auth w/o users": {"auth", `, auth_public_keys = null`, `users is required for an auth host`},
		"bad join tag":   {"node", `, join_tag = "cluster"`, `must be "Key=Value"`},
		"bad public key": {"node", `, auth_public_keys = "nope"`, `no PUBLIC KEY PEM block found`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
				ProtoV6ProviderFactories: renderingProviderFactories,
				Steps: []resource.TestStep{{
					Config: fmt.Sprintf("output \"ud\" {\n  sensitive = true\n  value = provider::wsdirect::cloudinit(%q, merge({ %s }, { %s }))\n}\n",
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
}

// TestCloudInitSettingsMatchDataSource keeps function keys and data source
// attributes in step, and the secrets sensitive.
func TestCloudInitSettingsMatchDataSource(t *testing.T) {
	var resp datasource.SchemaResponse
	NewCloudInitDataSource().Schema(context.Background(), datasource.SchemaRequest{}, &resp)
	for _, k := range sortedCloudInitKeys() {
		if _, ok := resp.Schema.Attributes[k]; !ok {
			t.Errorf("setting %q has no data source attribute", k)
		}
	}
	for _, k := range []string{"gossip_key", "signing_key", "users", "admin_token", "rendered"} {
		if !resp.Schema.Attributes[k].IsSensitive() {
			t.Errorf("attribute %q must be sensitive", k)
		}
	}
	for k := range resp.Schema.Attributes {
		if _, ok := cloudInitOptionDocs[k]; !ok && k != "id" && k != "rendered" && k != "role" {
			t.Errorf("data source attribute %q is not a function setting", k)
		}
	}
}
