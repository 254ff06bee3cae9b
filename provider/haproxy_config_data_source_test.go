package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

func TestHAProxyConfigDataSource(t *testing.T) {
	setupRenderingTest(t)
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: renderingProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: renderingProviderConfig + `
data "wsdirect_haproxy_config" "test" {
  backends = [
    { name = "n1", address = "10.0.1.10" },
    { name = "n2", address = "10.0.1.11", port = 9000 },
  ]
  source_ips            = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
  bind                  = "*:8000"
  balance               = "source"
  health_check_path     = "/readyz"
  health_check_interval = "5s"
  timeout_tunnel        = "30m"
  server_maxconn        = 20000
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.wsdirect_haproxy_config.test", tfjsonpath.New("rendered"), haproxyCheck(t,
						"    bind *:8000\n", "    balance source\n", "    option httpchk GET /readyz\n", "    timeout tunnel 30m\n",
						"    server n2_src3 10.0.1.11:9000 source 10.0.0.13 check inter 5s fall 3 rise 2 maxconn 20000\n",
					)),
					statecheck.ExpectKnownValue("data.wsdirect_haproxy_config.test", tfjsonpath.New("server_names"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("n1_src1"), knownvalue.StringExact("n1_src2"), knownvalue.StringExact("n1_src3"),
						knownvalue.StringExact("n2_src1"), knownvalue.StringExact("n2_src2"), knownvalue.StringExact("n2_src3"),
					})),
					statecheck.ExpectKnownValue("data.wsdirect_haproxy_config.test", tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))),
				},
			},
			{
				Config: renderingProviderConfig + `
data "wsdirect_haproxy_config" "test" {
  backends = [{ address = "10.0.1.10" }]
  mode     = "udp"
}
`,
				ExpectError: regexp.MustCompile(`value must be one of`),
			},
			{
				Config: renderingProviderConfig + `
data "wsdirect_haproxy_config" "test" {
  backends   = [{ address = "10.0.1.10" }]
  source_ips = ["10.0.0.11", "not-an-ip"]
}
`,
				ExpectError: regexp.MustCompile(`"not-an-ip" is neither an IP address`),
			},
			{
				Config: renderingProviderConfig + `
data "wsdirect_haproxy_config" "test" {
  backends       = [{ address = "10.0.1.10" }]
  timeout_client = "soon"
}
`,
				ExpectError: regexp.MustCompile(`"soon" is not a duration`),
			},
		},
	})
}

// TestHAProxyConfigDataSourceMatchesFunction checks that the data source
// and the function render the same bytes for the same inputs.
func TestHAProxyConfigDataSourceMatchesFunction(t *testing.T) {
	setupRenderingTest(t)
	resource.UnitTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
		ProtoV6ProviderFactories: renderingProviderFactories,
		Steps: []resource.TestStep{{
			Config: renderingProviderConfig + `
locals {
  backends = [{ name = "a", address = "10.0.1.10", port = 8080 }, { name = "b", address = "10.0.1.11", port = 8080 }]
  sources  = ["10.0.0.11", "10.0.0.12"]
}
data "wsdirect_haproxy_config" "test" {
  backends   = local.backends
  source_ips = local.sources
  mode       = "tcp"
  maxconn    = 12345
}
output "same" {
  value = data.wsdirect_haproxy_config.test.rendered == provider::wsdirect::haproxy_config(local.backends, local.sources, { mode = "tcp", maxconn = 12345 })
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("same", knownvalue.Bool(true)),
			},
		}},
	})
}
