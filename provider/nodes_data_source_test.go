package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

// TestAccNodesDataSource: instances are found by every given tag, with
// their addresses; others are left out.
func TestAccNodesDataSource(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	cfg := env.config(`
resource "wsdirect_node" "node" {
  count                      = 2
  ami                        = %[1]q
  instance_type              = "t3.small"
  subnet_id                  = count.index == 0 ? %[2]q : %[3]q
  secondary_private_ip_count = 2
  public_ip                  = "auto"
  tags = { "wsdirect:cluster" = "dstest", role = "node" }
}

resource "wsdirect_node" "auth" {
  ami           = %[1]q
  instance_type = "t3.micro"
  subnet_id     = %[2]q
  tags = { "wsdirect:cluster" = "dstest", role = "auth" }
}

data "wsdirect_nodes" "test" {
  tags       = { "wsdirect:cluster" = "dstest", role = "node" }
  depends_on = [wsdirect_node.node, wsdirect_node.auth]
}

data "wsdirect_nodes" "none" {
  tags       = { "wsdirect:cluster" = "other" }
  depends_on = [wsdirect_node.node, wsdirect_node.auth]
}
`, env.AMI, env.Subnet, env.Subnet2)
	nodeCheck := knownvalue.ObjectPartial(map[string]knownvalue.Check{
		"id":                    knownvalue.NotNull(),
		"private_ip":            knownvalue.NotNull(),
		"public_ip":             knownvalue.NotNull(),
		"availability_zone":     knownvalue.NotNull(),
		"secondary_private_ips": knownvalue.ListSizeExact(2),
		"tags":                  knownvalue.MapSizeExact(2),
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.wsdirect_nodes.test", at("nodes"), knownvalue.ListExact([]knownvalue.Check{nodeCheck, nodeCheck})),
					statecheck.ExpectKnownValue("data.wsdirect_nodes.test", at("ids"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue("data.wsdirect_nodes.none", at("nodes"), knownvalue.ListSizeExact(0)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					// Sorted by ID; both nodes present with the addresses the resources recorded.
					resource.TestCheckTypeSetElemAttrPair("data.wsdirect_nodes.test", "ids.*", "wsdirect_node.node.0", "id"),
					resource.TestCheckTypeSetElemAttrPair("data.wsdirect_nodes.test", "ids.*", "wsdirect_node.node.1", "id"),
					resource.TestCheckTypeSetElemAttrPair("data.wsdirect_nodes.test", "nodes.*.public_ip", "wsdirect_node.node.0", "public_ip_address"),
					resource.TestCheckTypeSetElemAttrPair("data.wsdirect_nodes.test", "nodes.*.private_ip", "wsdirect_node.node.1", "private_ip"),
				),
			},
		},
	})
}
