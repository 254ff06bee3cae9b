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
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

const testNode = "wsdirect_node.test"

// nodeConfig renders one wsdirect_node "test" with the given extra lines.
func (e *testAccEnv) nodeConfig(instanceType, extra string) string {
	return e.config(`
resource "wsdirect_node" "test" {
  ami           = %q
  instance_type = %q
  subnet_id     = %q
%s
}
`, e.AMI, instanceType, e.Subnet, extra)
}

func emptyPlanAfterApply() resource.ConfigPlanChecks {
	return resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
}

func expectAction(action plancheck.ResourceActionType) resource.ConfigPlanChecks {
	return resource.ConfigPlanChecks{
		PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(testNode, action)},
		PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
	}
}

func at(name string) tfjsonpath.Path { return tfjsonpath.New(name) }

// TestAccNode_lifecycle: create, update in place (secondary count up and
// down, security groups, tags), import, replace, destroy.
func TestAccNode_lifecycle(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	var id, firstSecondary, eni string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: env.nodeConfig("t3.small", fmt.Sprintf(`
  secondary_private_ip_count = 1
  security_group_ids         = [%q]
  user_data                  = "#!/bin/sh\necho hello\n"
  tags = { Name = "lifecycle" }`, env.SG)),
				ConfigPlanChecks: emptyPlanAfterApply(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("id"), knownvalue.StringRegexp(regexp.MustCompile(`^i-`))),
					statecheck.ExpectKnownValue(testNode, at("state"), knownvalue.StringExact("running")),
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ip_count"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListSizeExact(1)),
					statecheck.ExpectKnownValue(testNode, at("network_interface_id"), knownvalue.StringRegexp(regexp.MustCompile(`^eni-`))),
					statecheck.ExpectKnownValue(testNode, at("private_ip"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue(testNode, at("public_ip"), knownvalue.StringExact("none")),
					statecheck.ExpectKnownValue(testNode, at("public_ip_address"), knownvalue.Null()),
					statecheck.ExpectKnownValue(testNode, at("availability_zone"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue(testNode, at("security_group_ids"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(env.SG)})),
					statecheck.ExpectKnownValue(testNode, at("tags_all"), knownvalue.MapExact(map[string]knownvalue.Check{"Name": knownvalue.StringExact("lifecycle")})),
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_allocation_ids"), knownvalue.MapSizeExact(0)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					captureAttr(testNode, "id", &id),
					captureAttr(testNode, "secondary_private_ips.0", &firstSecondary),
					captureAttr(testNode, "network_interface_id", &eni),
				),
			},
			{
				// Grow the count, swap security groups, change tags: all in place.
				Config: env.nodeConfig("t3.small", fmt.Sprintf(`
  secondary_private_ip_count = 3
  security_group_ids         = [%q]
  user_data                  = "#!/bin/sh\necho hello\n"
  tags = { Name = "lifecycle", role = "node" }`, env.SG2)),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ip_count"), knownvalue.Int64Exact(3)),
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListSizeExact(3)),
					statecheck.ExpectKnownValue(testNode, at("security_group_ids"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(env.SG2)})),
					statecheck.ExpectKnownValue(testNode, at("tags_all"), knownvalue.MapSizeExact(2)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testNode, "id", &id, true),
					// The address that was there keeps its place at the head.
					checkAttrEquals(testNode, "secondary_private_ips.0", &firstSecondary, true),
					env.checkENIAddresses(&eni, 4),
				),
			},
			{
				// Shrink: the oldest address stays.
				Config: env.nodeConfig("t3.small", fmt.Sprintf(`
  secondary_private_ip_count = 1
  security_group_ids         = [%q]
  user_data                  = "#!/bin/sh\necho hello\n"
  tags = { Name = "lifecycle" }`, env.SG2)),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListSizeExact(1)),
					statecheck.ExpectKnownValue(testNode, at("tags_all"), knownvalue.MapSizeExact(1)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testNode, "id", &id, true),
					checkAttrEquals(testNode, "secondary_private_ips.0", &firstSecondary, true),
					env.checkENIAddresses(&eni, 2),
				),
			},
			{
				ResourceName:      testNode,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				// A new instance type replaces the instance.
				Config: env.nodeConfig("t3.medium", fmt.Sprintf(`
  secondary_private_ip_count = 1
  security_group_ids         = [%q]
  user_data                  = "#!/bin/sh\necho hello\n"
  tags = { Name = "lifecycle" }`, env.SG2)),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionReplace),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("instance_type"), knownvalue.StringExact("t3.medium")),
				},
				Check: checkAttrEquals(testNode, "id", &id, false),
			},
		},
	})
}

// TestAccNode_secondaryList: an explicit list keeps the user's order through
// create, in-place changes and refresh.
func TestAccNode_secondaryList(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	ips := func(ss ...string) string { return fmt.Sprintf("  secondary_private_ips = %s", hclList(ss...)) }
	exact := func(ss ...string) knownvalue.Check {
		c := make([]knownvalue.Check, len(ss))
		for i, s := range ss {
			c[i] = knownvalue.StringExact(s)
		}
		return knownvalue.ListExact(c)
	}
	base := testAccSubnetBase(env)
	a, b, c := base+"200", base+"150", base+"120"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           env.nodeConfig("t3.medium", ips(a, b)),
				ConfigPlanChecks: emptyPlanAfterApply(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ips"), exact(a, b)),
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ip_count"), knownvalue.Int64Exact(2)),
				},
			},
			{
				// Remove b, add c in front of a.
				Config:           env.nodeConfig("t3.medium", ips(c, a)),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ips"), exact(c, a)),
				},
			},
			{
				ResourceName:      testNode,
				ImportState:       true,
				ImportStateVerify: true, // c < a in address order, as import reads them
			},
		},
	})
}

// TestAccNode_elastic: an Elastic IP per address, recorded as actually
// associated; fewer secondaries release theirs; an EIP released out of band
// is drift that the next apply repairs; import reads it all back.
func TestAccNode_elastic(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	var id, primary string
	cfgPer := func(n int, per bool) string {
		return env.nodeConfig("t3.small", fmt.Sprintf(`
  secondary_private_ip_count = %d
  public_ip                  = "elastic"
  elastic_ip_per_secondary   = %v`, n, per))
	}
	cfg := func(n int) string { return cfgPer(n, true) }
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           cfg(2),
				ConfigPlanChecks: emptyPlanAfterApply(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_allocation_ids"), knownvalue.MapSizeExact(3)),
					statecheck.ExpectKnownValue(testNode, at("public_ip_address"), knownvalue.NotNull()),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					captureAttr(testNode, "id", &id),
					captureAttr(testNode, "private_ip", &primary),
					env.checkPublicIPIsEIP(testNode),
					env.checkAddressCount(3),
				),
			},
			{
				Config:           cfg(1),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_allocation_ids"), knownvalue.MapSizeExact(2)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(env.checkPublicIPIsEIP(testNode), env.checkAddressCount(2)),
			},
			{
				// Drift: the primary's EIP is released behind Terraform's back.
				PreConfig:        func() { env.releaseEIPOf(t, &id, &primary) },
				Config:           cfg(1),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_allocation_ids"), knownvalue.MapSizeExact(2)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(env.checkPublicIPIsEIP(testNode), env.checkAddressCount(2)),
			},
			{
				ResourceName:      testNode,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				// Only the primary keeps an EIP; the secondary's is released.
				Config:           cfgPer(1, false),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_allocation_ids"), knownvalue.MapSizeExact(1)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testNode, "id", &id, true),
					env.checkPublicIPIsEIP(testNode),
					env.checkAddressCount(1),
				),
			},
		},
	})
}

// TestAccNode_autoPublicIP: an ephemeral public address from launch.
func TestAccNode_autoPublicIP(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           env.nodeConfig("t3.micro", `  public_ip = "auto"`),
				ConfigPlanChecks: emptyPlanAfterApply(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("public_ip_address"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue(testNode, at("public_dns"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_allocation_ids"), knownvalue.MapSizeExact(0)),
				},
				Check: env.checkAddressCount(0),
			},
			{ResourceName: testNode, ImportState: true, ImportStateVerify: true},
		},
	})
}

// TestAccNode_drift: a secondary IP unassigned out of band is planned back;
// an instance terminated out of band is planned for creation.
func TestAccNode_drift(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	var id, eni, second string
	cfg := env.nodeConfig("t3.small", `  secondary_private_ip_count = 2`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           cfg,
				ConfigPlanChecks: emptyPlanAfterApply(),
				Check: resource.ComposeAggregateTestCheckFunc(
					captureAttr(testNode, "id", &id),
					captureAttr(testNode, "network_interface_id", &eni),
					captureAttr(testNode, "secondary_private_ips.1", &second),
				),
			},
			{
				PreConfig: func() {
					_, err := env.EC2().UnassignPrivateIpAddresses(context.Background(), &ec2.UnassignPrivateIpAddressesInput{
						NetworkInterfaceId: aws.String(eni), PrivateIpAddresses: []string{second},
					})
					if err != nil {
						t.Fatalf("drift: %v", err)
					}
				},
				Config:           cfg,
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListSizeExact(2)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testNode, "id", &id, true),
					env.checkENIAddresses(&eni, 3),
				),
			},
			{
				PreConfig: func() {
					_, err := env.EC2().TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
					if err != nil {
						t.Fatalf("drift: %v", err)
					}
					if err := waitInstanceTerminated(context.Background(), env.EC2(), id); err != nil {
						t.Fatalf("drift: %v", err)
					}
				},
				Config:           cfg,
				ConfigPlanChecks: expectAction(plancheck.ResourceActionCreate),
				Check:            checkAttrEquals(testNode, "id", &id, false),
			},
		},
	})
}

// TestAccNode_tooManyIPs: the instance type's limit fails the plan.
func TestAccNode_tooManyIPs(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	base := testAccSubnetBase(env)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      env.nodeConfig("t3.micro", `  secondary_private_ip_count = 5`),
				PlanOnly:    true,
				ExpectError: wrappedRegexp(`instance type "t3.micro" allows 2 private IPv4 addresses per network interface (1 primary + 1 secondary), but 5 secondary addresses were requested`),
			},
			{
				Config:      env.nodeConfig("t3.micro", fmt.Sprintf(`  secondary_private_ips = %s`, hclList(base+"10", base+"11"))),
				PlanOnly:    true,
				ExpectError: wrappedRegexp(`allows 2 private IPv4 addresses`),
			},
			{
				Config:      env.nodeConfig("t3.micro", `  elastic_ip_per_secondary = true`),
				PlanOnly:    true,
				ExpectError: wrappedRegexp(`requires public_ip = "elastic"`),
			},
			{
				Config: env.nodeConfig("t3.micro", `
  secondary_private_ip_count = 1
  secondary_private_ips      = ["10.0.1.10"]`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)secondary_private_ip.*cannot be configured together|Invalid Attribute Combination`),
			},
		},
	})
}

// TestAccNode_eventualConsistency: the new instance is invisible for a few
// describes, stays pending for more, and the first associations fail with
// IncorrectInstanceState; create still converges without a second instance.
func TestAccNode_eventualConsistency(t *testing.T) {
	cfg := ec2sim.DefaultConfig()
	cfg.NotFoundAfterCreate = 3
	cfg.PendingDescribes = 4
	env := newTestAccEnvSim(t, cfg)
	env.Sim.FailNext("AssociateAddress", "IncorrectInstanceState", 2)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           env.nodeConfig("t3.small", `  public_ip = "elastic"`),
				ConfigPlanChecks: emptyPlanAfterApply(),
				Check: resource.ComposeAggregateTestCheckFunc(
					env.checkPublicIPIsEIP(testNode),
					env.checkAddressCount(1),
					func(*terraform.State) error {
						if n := env.Sim.CallCount("AssociateAddress"); n < 3 {
							return fmt.Errorf("AssociateAddress called %d times, want >= 3 (2 injected failures)", n)
						}
						insts := env.Sim.Instances()
						if len(insts) != 1 || insts[0].ClientToken == "" {
							return fmt.Errorf("want 1 instance launched with a ClientToken, got %+v", insts)
						}
						notFound := 0
						for _, c := range env.Sim.Calls() {
							if c.ErrorCode == "InvalidInstanceID.NotFound" {
								notFound++
							}
						}
						if notFound < 3 {
							return fmt.Errorf("%d NotFound answers, want >= 3: the fault was not exercised", notFound)
						}
						return nil
					},
				),
			},
		},
	})
}

// TestAccNode_throttling: a fifth of all calls are throttled; the SDK
// retryer (max_retries) absorbs it.
func TestAccNode_throttling(t *testing.T) {
	cfg := ec2sim.DefaultConfig()
	cfg.ThrottleRate = 0.2
	cfg.Seed = 42
	env := newTestAccEnvSim(t, cfg)
	env.ProviderHCL = testAccSimProviderHCL(env.Sim, 30)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: env.nodeConfig("t3.small", `
  secondary_private_ip_count = 2
  public_ip                  = "elastic"`),
				ConfigPlanChecks: emptyPlanAfterApply(),
				Check: resource.ComposeAggregateTestCheckFunc(
					env.checkAddressCount(1),
					func(*terraform.State) error {
						throttled := 0
						for _, c := range env.Sim.Calls() {
							if c.ErrorCode == "RequestLimitExceeded" {
								throttled++
							}
						}
						if throttled == 0 {
							return fmt.Errorf("no call was throttled; the test proves nothing")
						}
						t.Logf("%d calls throttled and retried", throttled)
						return nil
					},
				),
			},
		},
	})
}

// TestAccNode_associateFailureNoLeak: association fails past all retries
// after the EIP was allocated. The apply fails, the EIP is released, the
// instance is recorded (tainted) and replaced by the next apply.
func TestAccNode_associateFailureNoLeak(t *testing.T) {
	env := newTestAccEnvSim(t, ec2sim.DefaultConfig())
	env.ProviderHCL = testAccSimProviderHCL(env.Sim, 1) // 2 attempts per call
	cfg := env.nodeConfig("t3.small", `  public_ip = "elastic"`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				PreConfig:   func() { env.Sim.FailNext("AssociateAddress", "InternalError", 2) },
				Config:      cfg,
				ExpectError: regexp.MustCompile(`associating Elastic IP`),
			},
			{
				PreConfig: func() {
					if a := env.Sim.Addresses(); len(a) != 0 {
						t.Errorf("after the failed create %d Elastic IP(s) remain: %+v", len(a), a)
					}
					if n := env.Sim.CallCount("ReleaseAddress"); n != 1 {
						t.Errorf("ReleaseAddress called %d times, want 1", n)
					}
				},
				Config:           cfg,
				ConfigPlanChecks: expectAction(plancheck.ResourceActionReplace), // the tainted instance
				Check:            resource.ComposeAggregateTestCheckFunc(env.checkAddressCount(1), env.checkPublicIPIsEIP(testNode)),
			},
		},
	})
}

// wrappedRegexp matches a phrase in terraform's output, where diagnostics
// are wrapped at any space.
func wrappedRegexp(phrase string) *regexp.Regexp {
	words := strings.Fields(phrase)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return regexp.MustCompile(strings.Join(words, `\s+`))
}

// testAccSubnetBase returns the first three octets (with the dot) of the
// test subnet, for explicit addresses.
func testAccSubnetBase(env *testAccEnv) string {
	out, err := env.EC2().DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{SubnetIds: []string{env.Subnet}})
	if err != nil || len(out.Subnets) == 0 {
		panic(fmt.Sprintf("describing subnet %s: %v", env.Subnet, err))
	}
	cidr := aws.ToString(out.Subnets[0].CidrBlock)
	re := regexp.MustCompile(`^(\d+\.\d+\.\d+\.)`)
	return re.FindString(cidr)
}

// checkENIAddresses checks the interface's total private IPv4 count.
func (e *testAccEnv) checkENIAddresses(eni *string, want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ni, err := describeENI(context.Background(), e.EC2(), *eni)
		if err != nil {
			return err
		}
		if got := len(ni.PrivateIpAddresses); got != want {
			return fmt.Errorf("%s has %d private IPs, want %d", *eni, got, want)
		}
		return nil
	}
}

// checkAddressCount checks the number of Elastic IPs (the sim's all, or on
// AWS those tagged as a node's).
func (e *testAccEnv) checkAddressCount(want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		out, err := e.EC2().DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{})
		if err != nil {
			return err
		}
		got := 0
		for _, a := range out.Addresses {
			if e.Sim != nil || tagMap(a.Tags)[tagEIPOwner] != "" {
				got++
				if a.AssociationId == nil {
					return fmt.Errorf("Elastic IP %s is not associated", aws.ToString(a.PublicIp))
				}
			}
		}
		if got != want {
			return fmt.Errorf("%d Elastic IPs, want %d", got, want)
		}
		return nil
	}
}

// checkPublicIPIsEIP checks that public_ip_address is the Elastic IP on the
// primary private IP, as EC2 reports it.
func (e *testAccEnv) checkPublicIPIsEIP(addr string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs := s.RootModule().Resources[addr]
		out, err := e.EC2().DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{
			Filters: []ec2types.Filter{{Name: aws.String("network-interface-id"), Values: []string{rs.Primary.Attributes["network_interface_id"]}}},
		})
		if err != nil {
			return err
		}
		for _, a := range out.Addresses {
			if aws.ToString(a.PrivateIpAddress) == rs.Primary.Attributes["private_ip"] {
				if got := rs.Primary.Attributes["public_ip_address"]; got != aws.ToString(a.PublicIp) {
					return fmt.Errorf("public_ip_address = %q, EIP on the primary is %s", got, aws.ToString(a.PublicIp))
				}
				return nil
			}
		}
		return fmt.Errorf("no Elastic IP on %s", rs.Primary.Attributes["private_ip"])
	}
}

// releaseEIPOf disassociates and releases the EIP on the instance's private
// IP, out of band.
func (e *testAccEnv) releaseEIPOf(t *testing.T, id, privateIP *string) {
	ctx := context.Background()
	out, err := e.EC2().DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range out.Addresses {
		if aws.ToString(a.InstanceId) == *id && aws.ToString(a.PrivateIpAddress) == *privateIP {
			if _, err := e.EC2().DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: a.AssociationId}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.EC2().ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: a.AllocationId}); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no Elastic IP on %s of %s", *privateIP, *id)
}

// TestAccNode_defaultTags: provider default_tags are merged under the
// resource's own tags, on the instance and its Elastic IP.
func TestAccNode_defaultTags(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	env.ProviderHCL = strings.Replace(env.ProviderHCL, `provider "wsdirect" {`,
		`provider "wsdirect" {
  default_tags = { team = "rt", env = "dev" }`, 1)
	cfg := func(tags string) string {
		return env.nodeConfig("t3.micro", fmt.Sprintf(`
  public_ip = "elastic"
  tags      = %s`, tags))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           cfg(`{ env = "prod", Name = "tagged" }`),
				ConfigPlanChecks: emptyPlanAfterApply(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("tags_all"), knownvalue.MapExact(map[string]knownvalue.Check{
						"team": knownvalue.StringExact("rt"), "env": knownvalue.StringExact("prod"), "Name": knownvalue.StringExact("tagged"),
					})),
					statecheck.ExpectKnownValue(testNode, at("tags"), knownvalue.MapSizeExact(2)),
				},
				Check: func(s *terraform.State) error {
					out, err := env.EC2().DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{})
					if err != nil {
						return err
					}
					for _, a := range out.Addresses {
						if tm := tagMap(a.Tags); tm[tagEIPOwner] == s.RootModule().Resources[testNode].Primary.ID {
							if tm["team"] != "rt" || tm["env"] != "prod" {
								return fmt.Errorf("Elastic IP tags %v lack the merged tags", tm)
							}
							return nil
						}
					}
					return fmt.Errorf("no Elastic IP tagged as the node's")
				},
			},
			{ResourceName: testNode, ImportState: true, ImportStateVerify: true},
			{
				Config:           cfg(`{ Name = "tagged" }`),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("tags_all"), knownvalue.MapExact(map[string]knownvalue.Check{
						"team": knownvalue.StringExact("rt"), "env": knownvalue.StringExact("dev"), "Name": knownvalue.StringExact("tagged"),
					})),
				},
			},
		},
	})
}

// TestAccNode_releaseFailureKeepsTagged: association and then the cleanup
// release both fail. The EIP stays, tagged as the node's, with a warning;
// replacing the tainted node releases it, so nothing leaks.
func TestAccNode_releaseFailureKeepsTagged(t *testing.T) {
	env := newTestAccEnvSim(t, ec2sim.DefaultConfig())
	env.ProviderHCL = testAccSimProviderHCL(env.Sim, 1)
	cfg := env.nodeConfig("t3.small", `  public_ip = "elastic"`)
	var firstID string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					env.Sim.FailNext("AssociateAddress", "InternalError", 2)
					env.Sim.FailNext("ReleaseAddress", "InternalError", 2)
				},
				Config:      cfg,
				ExpectError: wrappedRegexp(`associating Elastic IP`),
			},
			{
				PreConfig: func() {
					a := env.Sim.Addresses()
					if len(a) != 1 || a[0].AssociationID != "" || a[0].Tags[tagEIPOwner] == "" {
						t.Errorf("want one unassociated Elastic IP tagged %s, got %+v", tagEIPOwner, a)
						return
					}
					firstID = a[0].AllocationID
				},
				Config:           cfg,
				ConfigPlanChecks: expectAction(plancheck.ResourceActionReplace),
				Check: resource.ComposeAggregateTestCheckFunc(
					env.checkAddressCount(1),
					env.checkPublicIPIsEIP(testNode),
					func(*terraform.State) error {
						for _, a := range env.Sim.Addresses() {
							if a.AllocationID == firstID {
								return fmt.Errorf("the kept Elastic IP %s was not released by the replacement", firstID)
							}
						}
						return nil
					},
				),
			},
		},
	})
}

// TestAccNode_createTimeoutSavesPartialState: the instance never leaves
// pending within the create timeout. The apply fails but the instance is
// recorded (tainted), so the test's destroy terminates it: none is left
// untracked.
func TestAccNode_createTimeoutSavesPartialState(t *testing.T) {
	cfg := ec2sim.DefaultConfig()
	cfg.PendingDescribes = 1000000
	env := newTestAccEnvSim(t, cfg)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: env.nodeConfig("t3.micro", `
  timeouts {
    create = "2s"
  }`),
				ExpectError: wrappedRegexp(`timed out waiting for instance`),
			},
			{
				// The failed node is in state, tainted, with its instance ID.
				RefreshState:       true,
				ExpectNonEmptyPlan: true, // the replacement
				Check: func(s *terraform.State) error {
					rs, ok := s.RootModule().Resources[testNode]
					if !ok || !rs.Primary.Tainted || !strings.HasPrefix(rs.Primary.ID, "i-") {
						return fmt.Errorf("want a tainted node with an instance ID in state, got %+v", rs)
					}
					if n := len(env.Sim.Instances()); n != 1 {
						return fmt.Errorf("%d instances, want 1", n)
					}
					return nil
				},
			},
		},
	})
}
