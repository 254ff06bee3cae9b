package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
)

// renderingProviderFactories serves the real provider for the rendering
// functions and data sources, which make no EC2 calls.
var renderingProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"wsdirect": providerserver.NewProtocol6WithError(New("test")()),
}

// renderingProviderConfig satisfies the provider's required region; the
// rendering data sources never use the client.
const renderingProviderConfig = `
provider "wsdirect" {
  region     = "us-east-1"
  access_key = "AKIDTEST"
  secret_key = "secret"
}
`

// setupRenderingTest prepares terraform for the rendering tests, which
// run without TF_ACC (resource.UnitTest: they make no cloud calls): an
// empty CLI config, no checkpoint calls, and the repository's terraform
// unless TF_ACC_TERRAFORM_PATH names another.
func setupRenderingTest(t *testing.T) {
	t.Helper()
	cli := filepath.Join(t.TempDir(), "terraformrc")
	if err := os.WriteFile(cli, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_CLI_CONFIG_FILE", cli)
	t.Setenv("CHECKPOINT_DISABLE", "1")
	if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		if p, err := filepath.Abs(filepath.Join("..", "bin", "terraform")); err == nil {
			if _, err := os.Stat(p); err == nil {
				t.Setenv("TF_ACC_TERRAFORM_PATH", p)
			}
		}
	}
}

// haproxyCheck returns a knownvalue check that runs the real "haproxy -c"
// on a rendered config. Without haproxy it only skips the haproxy part,
// unless CI is set, where a missing haproxy fails the test.
func haproxyCheck(t *testing.T, mustContain ...string) knownvalue.Check {
	return knownvalue.StringFunc(func(cfg string) error {
		for _, s := range mustContain {
			if !strings.Contains(cfg, s) {
				return fmt.Errorf("rendered config lacks %q:\n%s", s, cfg)
			}
		}
		bin, err := haproxycfg.FindBinary()
		if err != nil {
			if os.Getenv("CI") != "" {
				return fmt.Errorf("CI is set but haproxy is unavailable: %w", err)
			}
			t.Logf("not running haproxy -c: %v", err)
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := haproxycfg.Check(ctx, bin, cfg)
		if err != nil {
			return err
		}
		if len(res.Warnings) > 0 {
			return fmt.Errorf("haproxy warned: %s", strings.Join(res.Warnings, "; "))
		}
		return nil
	})
}

func TestHAProxyConfigFunction(t *testing.T) {
	setupRenderingTest(t)
	resource.UnitTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
		ProtoV6ProviderFactories: renderingProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: `
locals {
  nodes = [
    { name = "n1", address = "10.0.1.10", port = 8080 },
    { name = null, address = "10.0.1.11", port = null },
  ]
}
output "cfg" {
  value = provider::wsdirect::haproxy_config(local.nodes, ["10.0.0.11", "10.0.0.12"])
}
output "servers" {
  value = length(regexall("(?m)^    server ", provider::wsdirect::haproxy_config(local.nodes, ["10.0.0.11", "10.0.0.12"])))
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("cfg", haproxyCheck(t,
						"    mode http\n", "    balance leastconn\n", "    timeout tunnel 1h\n", "    option httpchk GET /healthz\n",
						"    server n1_src1 10.0.1.10:8080 source 10.0.0.11 check inter 2s fall 3 rise 2\n",
						"    server node2_src2 10.0.1.11:8080 source 10.0.0.12 check inter 2s fall 3 rise 2\n",
					)),
					statecheck.ExpectKnownOutputValue("servers", knownvalue.Int64Exact(4)),
				},
			},
			{
				Config: `
output "cfg" {
  value = provider::wsdirect::haproxy_config(
    [{ name = "a", address = "127.0.0.2", port = 18080 }],
    ["127.0.0.11", "127.0.0.12", "127.0.0.13"],
    {
      mode           = "tcp"
      balance        = "roundrobin"
      bind           = "127.0.0.1:18000"
      maxconn        = 5000
      server_maxconn = 1500
      timeout_tunnel = "2h"
      stats_bind     = "127.0.0.1:18404"
      log            = null
    },
  )
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("cfg", haproxyCheck(t,
						"    mode tcp\n", "    balance roundrobin\n", "    maxconn 5000\n", "    timeout tunnel 2h\n",
						"    bind 127.0.0.1:18000\n", "listen stats\n",
						"    server a_src3 127.0.0.2:18080 source 127.0.0.13 check inter 2s fall 3 rise 2 maxconn 1500\n",
					)),
				},
			},
		},
	})
}

func TestHAProxyConfigFunctionErrors(t *testing.T) {
	setupRenderingTest(t)
	cases := map[string]struct {
		call string
		want string
	}{
		"no backends":       {`[], []`, `at least one backend is required`},
		"duplicate sources": {`[{ name = "a", address = "10.0.0.1", port = 80 }], ["10.0.0.5", "10.0.0.5"]`, `duplicates source IP 1`},
		"bad backend ip":    {`[{ name = "a", address = "10.0.0.300", port = 80 }], []`, `is not a valid IP address`},
		"unknown mode":      {`[{ name = "a", address = "10.0.0.1", port = 80 }], [], { mode = "udp" }`, `mode "udp" is not supported`},
		"unknown balance":   {`[{ name = "a", address = "10.0.0.1", port = 80 }], [], { balance = "fastest" }`, `balance "fastest" is not supported`},
		"unknown option":    {`[{ name = "a", address = "10.0.0.1", port = 80 }], [], { maxconns = 5 }`, `unknown option "maxconns"`},
		"bad duration":      {`[{ name = "a", address = "10.0.0.1", port = 80 }], [], { timeout_tunnel = "forever" }`, `not a duration`},
		"two option maps":   {`[{ name = "a", address = "10.0.0.1", port = 80 }], [], {}, {}`, `at most one options map`},
		"missing attribute": {`[{ name = "a", address = "10.0.0.1" }], []`, `attribute "port" is required`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)},
				ProtoV6ProviderFactories: renderingProviderFactories,
				Steps: []resource.TestStep{{
					Config: fmt.Sprintf("output \"cfg\" {\n  value = provider::wsdirect::haproxy_config(%s)\n}\n", tc.call),
					// Terraform wraps long messages, so any space may be a newline.
					ExpectError: regexp.MustCompile(strings.ReplaceAll(regexp.QuoteMeta(tc.want), " ", `\s+`)),
				}},
			})
		})
	}
}

func TestApplyHAProxyOption(t *testing.T) {
	var c haproxycfg.Config
	for k, v := range map[string]string{
		"maxconn": "7000", "server_maxconn": " 10 ", "health_check_interval": "1500ms", "timeout_client_fin": "5s",
		"mode": "tcp", "health_check_fall": "4",
	} {
		if err := applyHAProxyOption(&c, k, v); err != nil {
			t.Fatalf("%s=%s: %v", k, v, err)
		}
	}
	if c.MaxConn != 7000 || c.ServerMaxConn != 10 || c.HealthCheckInterval != 1500*time.Millisecond ||
		c.TimeoutClientFin != 5*time.Second || c.Mode != "tcp" || c.HealthCheckFall != 4 {
		t.Fatalf("options not applied: %+v", c)
	}
	for k, v := range map[string]string{"maxconn": "lots", "timeout_tunnel": "-1s", "timeout_client": "1 hour", "nope": "x"} {
		if err := applyHAProxyOption(&c, k, v); err == nil {
			t.Errorf("%s=%q accepted", k, v)
		}
	}
}

// TestHAProxyOptionsMatchDataSource keeps the function's option keys and
// the data source's attributes in step.
func TestHAProxyOptionsMatchDataSource(t *testing.T) {
	var resp datasource.SchemaResponse
	NewHAProxyConfigDataSource().Schema(context.Background(), datasource.SchemaRequest{}, &resp)
	for _, k := range sortedOptionKeys() {
		a, ok := resp.Schema.Attributes[k]
		if !ok {
			t.Errorf("option %q has no data source attribute", k)
			continue
		}
		if !a.IsOptional() || a.GetMarkdownDescription() == "" {
			t.Errorf("attribute %q must be optional and documented", k)
		}
	}
	for k := range resp.Schema.Attributes {
		switch k {
		case "id", "rendered", "server_names", "backends", "source_ips":
		default:
			if _, ok := haproxyOptionDocs[k]; !ok {
				t.Errorf("data source attribute %q is not a function option", k)
			}
		}
	}
}
