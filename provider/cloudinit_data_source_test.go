package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

func TestCloudInitDataSource(t *testing.T) {
	setupRenderingTest(t)
	pub, _ := testKeyPEMs(t)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: renderingProviderFactories,
		// Error steps first: the post-test destroy runs the last step's
		// config, which must be valid.
		Steps: []resource.TestStep{
			{
				Config: renderingProviderConfig + fmt.Sprintf(`
data "wsdirect_cloudinit" "node" {
  role                  = "node"
  release_url           = "https://example.com/wsdirect-node"
  gossip_key_parameter  = "/ds/gossip-key"
  join_tag              = "wsdirect:cluster=ds"
  auth_public_keys      = %q
  signing_key_parameter = "/ds/signing-key"
}
`, pub),
				ExpectError: regexp.MustCompile(`apply to the auth role only`),
			},
			{
				Config: renderingProviderConfig + `
data "wsdirect_cloudinit" "node" {
  role                       = "node"
  release_url                = "https://example.com/wsdirect-node"
  gossip_key_parameter       = "ssm:///ds/gossip-key"
  join_tag                   = "wsdirect:cluster=ds"
  auth_public_keys_parameter = "ds/keys"
}
`,
				ExpectError: regexp.MustCompile(`(?s)without ssm://.*must start with '/'`),
			},
			{
				Config: renderingProviderConfig + `
data "wsdirect_cloudinit" "x" {
  role                 = "bastion"
  release_url          = "https://example.com/x"
  gossip_key_parameter = "/k"
  join_tag             = "k=v"
}
`,
				ExpectError: regexp.MustCompile(`value must be one of`),
			},
			{
				Config: renderingProviderConfig + fmt.Sprintf(`
data "wsdirect_cloudinit" "node" {
  role                 = "node"
  release_url          = "https://example.com/wsdirect-node"
  gossip_key_parameter = "/ds/gossip-key"
  join_tag             = "wsdirect:cluster=ds"
  max_conns            = 1000
  name                 = "node-a"
  auth_public_keys     = %q
}
data "wsdirect_cloudinit" "auth" {
  role                  = "auth"
  release_url           = "https://example.com/wsdirect-auth"
  gossip_key_parameter  = "/ds/gossip-key"
  join_tag              = "wsdirect:cluster=ds"
  signing_key_parameter = "/ds/signing-key"
  users_parameter       = "/ds/users"
  tls_names             = ["auth.ds.example.com", "auth2.ds.example.com"]
  acme_email            = "ops@example.com"
}
`, pub),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.wsdirect_cloudinit.node", tfjsonpath.New("rendered"), cloudConfigCheck("/etc/systemd/system/wsdirect-node.service",
						"-name node-a ", "-bind 0.0.0.0:443 ", "-join-ec2-tag wsdirect:cluster=ds ", "-max-conns 1000 -tls acme -acme-http-bind 0.0.0.0:80 -acme-storage /var/lib/wsdirect/acme\n")),
					statecheck.ExpectKnownValue("data.wsdirect_cloudinit.auth", tfjsonpath.New("rendered"), cloudConfigCheck("/etc/systemd/system/wsdirect-auth.service",
						"-signing-key ssm:///ds/signing-key -users ssm:///ds/users -tls acme -tls-names auth.ds.example.com,auth2.ds.example.com "+
							"-acme-http-bind 0.0.0.0:80 -acme-storage /var/lib/wsdirect/acme -acme-email ops@example.com\n")),
					statecheck.ExpectKnownValue("data.wsdirect_cloudinit.node", tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))),
				},
			},
		},
	})
}

func TestCloudInitDataSourceMatchesFunction(t *testing.T) {
	setupRenderingTest(t)
	pub, _ := testKeyPEMs(t)
	resource.UnitTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
		ProtoV6ProviderFactories: renderingProviderFactories,
		Steps: []resource.TestStep{{
			Config: renderingProviderConfig + fmt.Sprintf(`
locals {
  s = {
    release_url          = "https://example.com/wsdirect-node"
    gossip_key_parameter = "/eq/gossip-key"
    join_tag             = "wsdirect:cluster=eq"
    auth_public_keys     = %q
    max_conns            = 777
    tls                  = "files"
    tls_names            = "n.example.com,203.0.113.7"
    tls_cert_file        = "/etc/ssl/ws.pem"
    tls_key_parameter    = "/eq/tls-key"
    advertise_port       = 8443
    drain_rate           = 60
    drain_deadline       = "45s"
  }
}
data "wsdirect_cloudinit" "node" {
  role                 = "node"
  release_url          = local.s.release_url
  gossip_key_parameter = local.s.gossip_key_parameter
  join_tag             = local.s.join_tag
  auth_public_keys     = local.s.auth_public_keys
  max_conns            = local.s.max_conns
  tls                  = local.s.tls
  tls_names            = split(",", local.s.tls_names)
  tls_cert_file        = local.s.tls_cert_file
  tls_key_parameter    = local.s.tls_key_parameter
  advertise_port       = local.s.advertise_port
  drain_rate           = local.s.drain_rate
  drain_deadline       = local.s.drain_deadline
}
output "drain" {
  value = strcontains(data.wsdirect_cloudinit.node.rendered, " -drain-deadline 45s -drain-rate 60 ") && strcontains(data.wsdirect_cloudinit.node.rendered, "TimeoutStopSec=75s")
}
output "same" {
  value = data.wsdirect_cloudinit.node.rendered == provider::wsdirect::cloudinit("node", local.s)
}
output "key_from_parameter" {
  value = strcontains(data.wsdirect_cloudinit.node.rendered, "-tls-cert /etc/ssl/ws.pem -tls-key ssm:///eq/tls-key")
}
`, pub),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("same", knownvalue.Bool(true)),
				statecheck.ExpectKnownOutputValue("key_from_parameter", knownvalue.Bool(true)),
				statecheck.ExpectKnownOutputValue("drain", knownvalue.Bool(true)),
			},
		}},
	})
}
