package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

// TestAccNode_launchLacksAddresses: the EC2 endpoint launches interfaces
// without the secondary addresses asked for. Create fails with an error that
// names the instance and what is missing (not Terraform's "inconsistent
// result after apply"); the instance is saved tainted, so the next apply
// replaces it and none is left behind.
func TestAccNode_launchLacksAddresses(t *testing.T) {
	cfg := ec2sim.DefaultConfig()
	cfg.LaunchIgnoresSecondaryIPs = true
	env := newTestAccEnvSim(t, cfg)
	base := testAccSubnetBase(env)
	list := fmt.Sprintf(`  secondary_private_ips = %s`, hclList(base+"20", base+"21"))
	alive := func() (n int) {
		for _, in := range env.Sim.Instances() {
			if in.State != "terminated" {
				n++
			}
		}
		return n
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:      env.nodeConfig("t3.small", `  secondary_private_ip_count = 2`),
				ExpectError: wrappedRegexp(`was launched with 0 of the 2 secondary private IPs asked for: its interface eni-`),
			},
			{
				RefreshState:       true,
				ExpectNonEmptyPlan: true, // the replacement
				Check: func(s *terraform.State) error {
					rs, ok := s.RootModule().Resources[testNode]
					if !ok || !rs.Primary.Tainted || !strings.HasPrefix(rs.Primary.ID, "i-") {
						return fmt.Errorf("want a tainted node with an instance ID in state, got %+v", rs)
					}
					if n := alive(); n != 1 {
						return fmt.Errorf("%d instances alive, want 1", n)
					}
					return nil
				},
			},
			{
				// The tainted node is replaced; the new one lacks its listed addresses.
				Config: env.nodeConfig("t3.small", list),
				ExpectError: regexp.MustCompile(wrappedRegexp(`instance i-`).String() + `\S+\s+` +
					wrappedRegexp(`was launched without 2 of the 2 secondary private IPs asked for: its interface`).String() + `\s+eni-\S+\s+` +
					wrappedRegexp(fmt.Sprintf(`lacks %s, %s (it has none)`, base+"20", base+"21")).String()),
			},
			{
				PreConfig: func() {
					if n := alive(); n != 1 {
						t.Errorf("%d instances alive after the second failure, want 1 (the first replaced)", n)
					}
					if err := env.Sim.UpdateConfig(func(c *ec2sim.Config) { c.LaunchIgnoresSecondaryIPs = false }); err != nil {
						t.Fatal(err)
					}
				},
				Config:           env.nodeConfig("t3.small", list),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionReplace),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact(base + "20"), knownvalue.StringExact(base + "21"),
					})),
				},
				Check: func(*terraform.State) error {
					if n, all := alive(), len(env.Sim.Instances()); n != 1 || all != 3 {
						return fmt.Errorf("%d of %d instances alive, want 1 of 3", n, all)
					}
					return nil
				},
			},
		},
	})
}

// TestAccNode_assignAnswersAll: the EC2 endpoint answers
// AssignPrivateIpAddresses with every address of the interface, primary
// included. A node and a wsdirect_private_ips on its interface still each
// record exactly the addresses they added, through growth and shrinking.
func TestAccNode_assignAnswersAll(t *testing.T) {
	cfg := ec2sim.DefaultConfig()
	cfg.AssignAnswersAll = true
	env := newTestAccEnvSim(t, cfg)
	const extra = "wsdirect_private_ips.extra"
	config := func(node, more int) string {
		return env.config(`
resource "wsdirect_node" "test" {
  ami                        = %q
  instance_type              = "t3.medium"
  subnet_id                  = %q
  secondary_private_ip_count = %d
}

resource "wsdirect_private_ips" "extra" {
  network_interface_id       = wsdirect_node.test.network_interface_id
  secondary_private_ip_count = %d
}
`, env.AMI, env.Subnet, node, more)
	}
	var eni string
	// disjoint checks that the node and wsdirect_private_ips hold disjoint
	// addresses, neither the primary, and that together with it they are
	// every address of the interface.
	disjoint := func(nodeN, moreN int) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			node := s.RootModule().Resources[testNode].Primary.Attributes
			more := s.RootModule().Resources[extra].Primary.Attributes
			seen := map[string]string{node["private_ip"]: "primary"}
			for _, r := range []struct {
				name  string
				attrs map[string]string
				key   string
				n     int
			}{{"node", node, "secondary_private_ips", nodeN}, {"private_ips", more, "private_ips", moreN}} {
				if got := r.attrs[r.key+".#"]; got != fmt.Sprint(r.n) {
					return fmt.Errorf("%s records %s addresses, want %d", r.name, got, r.n)
				}
				for i := range r.n {
					ip := r.attrs[fmt.Sprintf("%s.%d", r.key, i)]
					if other, dup := seen[ip]; dup {
						return fmt.Errorf("%s records %s, which is the %s's", r.name, ip, other)
					}
					seen[ip] = r.name
				}
			}
			return env.checkENIAddresses(&eni, len(seen))(s)
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           config(1, 1),
				ConfigPlanChecks: emptyPlanAfterApply(),
				Check:            resource.ComposeAggregateTestCheckFunc(captureAttr(testNode, "network_interface_id", &eni), disjoint(1, 1)),
			},
			{
				Config:           config(3, 2),
				ConfigPlanChecks: emptyPlanAfterApply(),
				Check:            disjoint(3, 2),
			},
			{
				Config:           config(1, 2),
				ConfigPlanChecks: emptyPlanAfterApply(),
				Check:            disjoint(1, 2),
			},
		},
	})
}

// TestAccNode_deleteWaitsForShutdown: instances stay shutting-down, with
// their addresses, for several describes. Destroy waits until they are
// terminated: an Elastic IP allocated outside Terraform on the primary
// address is then disassociated by the termination, and not released.
func TestAccNode_deleteWaitsForShutdown(t *testing.T) {
	cfg := ec2sim.DefaultConfig()
	cfg.ShutdownDescribes = 4
	env := newTestAccEnvSim(t, cfg)
	config := env.nodeConfig("t3.small", `  secondary_private_ip_count = 1`)
	var id, primary, public string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(s *terraform.State) error {
			// The provider polled through every shutting-down describe.
			calls, after := env.Sim.Calls(), -1
			for i, c := range calls {
				if c.Action == "TerminateInstances" {
					after = i
				}
			}
			describes := 0
			for _, c := range calls[after+1:] {
				if c.Action == "DescribeInstances" {
					describes++
				}
			}
			if after < 0 || describes <= cfg.ShutdownDescribes {
				return fmt.Errorf("%d describes after TerminateInstances, want > %d", describes, cfg.ShutdownDescribes)
			}
			return env.checkDestroyed(s) // the hand-made Elastic IP: allocated, no longer associated
		},
		Steps: []resource.TestStep{
			{
				Config:           config,
				ConfigPlanChecks: emptyPlanAfterApply(),
				Check: resource.ComposeAggregateTestCheckFunc(
					captureAttr(testNode, "id", &id),
					captureAttr(testNode, "private_ip", &primary),
				),
			},
			{
				PreConfig: func() {
					ctx := context.Background()
					a, err := env.EC2().AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc})
					if err != nil {
						t.Fatal(err)
					}
					env.ForeignEIPs = append(env.ForeignEIPs, aws.ToString(a.AllocationId))
					public = aws.ToString(a.PublicIp)
					if _, err := env.EC2().AssociateAddress(ctx, &ec2.AssociateAddressInput{
						AllocationId: a.AllocationId, InstanceId: aws.String(id), PrivateIpAddress: aws.String(primary),
					}); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_allocation_ids"), knownvalue.MapSizeExact(1)),
				},
				Check: checkAttrEquals(testNode, "public_ip_address", &public, true),
			},
		},
	})
}
