package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

const testIPs = "wsdirect_private_ips.test"

// privateIPsConfig renders two host nodes (the first with one secondary IP
// of its own) and a wsdirect_private_ips on the named host.
func (e *testAccEnv) privateIPsConfig(host, args string) string {
	return e.config(`
resource "wsdirect_node" "host" {
  ami                        = %[1]q
  instance_type              = "t3.medium"
  subnet_id                  = %[2]q
  secondary_private_ip_count = 1
}

resource "wsdirect_node" "host2" {
  ami           = %[1]q
  instance_type = "t3.medium"
  subnet_id     = %[2]q
}

resource "wsdirect_private_ips" "test" {
  network_interface_id = wsdirect_node.%[3]s.network_interface_id
%[4]s
}
`, e.AMI, e.Subnet, host, args)
}

func ipsAction(action plancheck.ResourceActionType) resource.ConfigPlanChecks {
	return resource.ConfigPlanChecks{
		PreApply: []plancheck.PlanCheck{
			plancheck.ExpectResourceAction(testIPs, action),
			// The host keeps its own address and ignores the resource's.
			plancheck.ExpectResourceAction("wsdirect_node.host", plancheck.ResourceActionNoop),
		},
		PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
	}
}

// TestAccPrivateIPs_lifecycle: create by count, grow and shrink in place,
// switch to an ordered list, import, drift, replace onto another interface.
func TestAccPrivateIPs_lifecycle(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	base := testAccSubnetBase(env)
	a, b := base+"202", base+"201"
	var eni, first string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           env.privateIPsConfig("host", `  secondary_private_ip_count = 2`),
				ConfigPlanChecks: emptyPlanAfterApply(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testIPs, at("private_ips"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue("wsdirect_node.host", at("secondary_private_ips"), knownvalue.ListSizeExact(1)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					captureAttr(testIPs, "id", &eni),
					captureAttr(testIPs, "private_ips.0", &first),
					env.checkENIAddresses(&eni, 4), // primary + host's 1 + 2
				),
			},
			{
				Config:           env.privateIPsConfig("host", `  secondary_private_ip_count = 4`),
				ConfigPlanChecks: ipsAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testIPs, at("private_ips"), knownvalue.ListSizeExact(4)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testIPs, "private_ips.0", &first, true),
					env.checkENIAddresses(&eni, 6),
				),
			},
			{
				Config:           env.privateIPsConfig("host", `  secondary_private_ip_count = 1`),
				ConfigPlanChecks: ipsAction(plancheck.ResourceActionUpdate),
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testIPs, "private_ips.0", &first, true),
					env.checkENIAddresses(&eni, 3),
				),
			},
			{
				Config:           env.privateIPsConfig("host", fmt.Sprintf(`  private_ips = %s`, hclList(a, b))),
				ConfigPlanChecks: ipsAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testIPs, at("private_ips"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact(a), knownvalue.StringExact(b)})),
					statecheck.ExpectKnownValue(testIPs, at("secondary_private_ip_count"), knownvalue.Int64Exact(2)),
				},
				Check: env.checkENIAddresses(&eni, 4),
			},
			{
				// Drift: one address unassigned out of band is planned back.
				PreConfig: func() {
					_, err := env.EC2().UnassignPrivateIpAddresses(context.Background(), &ec2.UnassignPrivateIpAddressesInput{
						NetworkInterfaceId: aws.String(eni), PrivateIpAddresses: []string{a},
					})
					if err != nil {
						t.Fatalf("drift: %v", err)
					}
				},
				Config:           env.privateIPsConfig("host", fmt.Sprintf(`  private_ips = %s`, hclList(a, b))),
				ConfigPlanChecks: ipsAction(plancheck.ResourceActionUpdate),
				Check:            env.checkENIAddresses(&eni, 4),
			},
			{
				// Import adopts every secondary address of the interface, in
				// address order: only the host's own one is extra.
				ResourceName:      testIPs,
				ImportState:       true,
				ImportStateVerify: false,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if len(states) != 1 || states[0].Attributes["network_interface_id"] != eni ||
						states[0].Attributes["private_ips.#"] != "3" || states[0].Attributes["secondary_private_ip_count"] != "3" {
						return fmt.Errorf("imported %+v", states)
					}
					return nil
				},
			},
			{
				// Naming the owned addresses in the import ID reads back exactly
				// the resource's state, the host's address left out.
				ResourceName:      testIPs,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: func(*terraform.State) (string, error) { return eni + ":" + a + "," + b, nil },
			},
			{
				Config: env.privateIPsConfig("host2", `  secondary_private_ip_count = 2`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(testIPs, plancheck.ResourceActionReplace)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testIPs, "id", &eni, false),
					env.checkENIAddresses(&eni, 2), // the first host keeps only its own
				),
			},
		},
	})
}

// TestAccPrivateIPs_importVerify: on an interface with no other secondary
// addresses import reproduces the state exactly.
func TestAccPrivateIPs_importVerify(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           env.privateIPsConfig("host2", `  secondary_private_ip_count = 3`),
				ConfigPlanChecks: emptyPlanAfterApply(),
			},
			{ResourceName: testIPs, ImportState: true, ImportStateVerify: true},
		},
	})
}

// TestAccPrivateIPs_tooMany: the attached instance's type bounds the count,
// counting the addresses already on the interface.
func TestAccPrivateIPs_tooMany(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	host := env.config(`
resource "wsdirect_node" "host" {
  ami                        = %q
  instance_type              = "t3.small"
  subnet_id                  = %q
  secondary_private_ip_count = 1
}
`, env.AMI, env.Subnet)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{Config: host},
			{
				Config: host + `
resource "wsdirect_private_ips" "test" {
  network_interface_id       = wsdirect_node.host.network_interface_id
  secondary_private_ip_count = 3
}
`,
				PlanOnly:    true,
				ExpectError: wrappedRegexp(`instance type "t3.small" allows 4 private IPv4 addresses per network interface (1 primary + 3 secondary), but 4 secondary addresses were requested`),
			},
		},
	})
}
