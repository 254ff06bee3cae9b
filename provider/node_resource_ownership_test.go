package provider

import (
	"context"
	"fmt"
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

// outsideNode is an instance set up by hand, outside Terraform, for import
// tests: two secondary private IPs, an untagged Elastic IP on the primary
// and another on the second secondary, and an unassociated Elastic IP tagged
// as the node's (handed over).
type outsideNode struct {
	id, eni, primary       string
	s1, s2                 string // secondaries, in address order
	primaryEIP, primaryPub string // allocation ID and address of the primary's Elastic IP
	s2EIP                  string
	handedOver             string
}

func (e *testAccEnv) launchOutsideNode(t *testing.T) *outsideNode {
	t.Helper()
	ctx := context.Background()
	c := e.EC2()
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(e.AMI), InstanceType: ec2types.InstanceTypeT3Small, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(e.Subnet), Groups: []string{e.SG},
			SecondaryPrivateIpAddressCount: aws.Int32(2), DeleteOnTermination: aws.Bool(true),
		}},
		// As the node resource launches by default, so the import plans no
		// metadata change (EC2's own default is IMDSv1 allowed).
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired},
	})
	if err != nil {
		t.Fatalf("launching the outside instance: %v", err)
	}
	n := &outsideNode{id: aws.ToString(out.Instances[0].InstanceId)}
	inst, err := waitInstanceRunning(ctx, c, n.id)
	if err != nil {
		t.Fatal(err)
	}
	eni := primaryENI(inst)
	n.eni, n.primary = aws.ToString(eni.NetworkInterfaceId), aws.ToString(eni.PrivateIpAddress)
	sec := orderIPs(nil, secondaryIPs(eni))
	n.s1, n.s2 = sec[0], sec[1]
	alloc := func(tags map[string]string) (string, string) {
		in := &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc}
		if len(tags) > 0 {
			in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeElasticIp, Tags: ec2Tags(tags)}}
		}
		a, err := c.AllocateAddress(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(a.AllocationId), aws.ToString(a.PublicIp)
	}
	associate := func(allocID, pip string) {
		if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{
			AllocationId: aws.String(allocID), NetworkInterfaceId: aws.String(n.eni), PrivateIpAddress: aws.String(pip),
		}); err != nil {
			t.Fatal(err)
		}
	}
	n.primaryEIP, n.primaryPub = alloc(map[string]string{"Name": "allocated by hand"})
	e.ForeignEIPs = append(e.ForeignEIPs, n.primaryEIP)
	associate(n.primaryEIP, n.primary)
	n.s2EIP, _ = alloc(nil)
	e.ForeignEIPs = append(e.ForeignEIPs, n.s2EIP)
	associate(n.s2EIP, n.s2)
	n.handedOver, _ = alloc(map[string]string{tagEIPOwner: n.id})
	return n
}

// TestAccNode_importOwnership: an instance set up by hand is imported with
// the one secondary address the node is to own. The import reads exactly
// that, with the hand-made Elastic IP on the primary; the configuration
// then plans nothing. A count change unassigns only the owned address and
// leaves the other one and its Elastic IP alone; import-verify reads the
// same back; destroy releases the Elastic IP tagged as the node's and
// leaves both hand-made ones allocated.
func TestAccNode_importOwnership(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	var n *outsideNode
	cfg := func(count int) string {
		return env.nodeConfig("t3.small", fmt.Sprintf(`
  secondary_private_ip_count = %d
  security_group_ids         = [%q]
  public_ip                  = "elastic"`, count, env.SG))
	}
	importID := func(owned string) resource.ImportStateIdFunc {
		return func(*terraform.State) (string, error) { return n.id + ":" + owned, nil }
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				// An address that is not on the interface is refused by name.
				PreConfig:         func() { n = env.launchOutsideNode(t) },
				Config:            cfg(1),
				ResourceName:      testNode,
				ImportState:       true,
				ImportStateIdFunc: func(*terraform.State) (string, error) { return n.id + ":" + n.s1 + ",10.0.1.3", nil },
				ExpectError:       wrappedRegexp(`10.0.1.3 is not a secondary private IP of`),
			},
			{
				Config:             cfg(1),
				ResourceName:       testNode,
				ImportState:        true,
				ImportStatePersist: true,
				ImportStateIdFunc:  func(s *terraform.State) (string, error) { return importID(n.s1)(s) },
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if len(states) != 1 {
						return fmt.Errorf("imported %d objects", len(states))
					}
					a := states[0].Attributes
					want := map[string]string{
						"id":                                     n.id,
						"secondary_private_ips.#":                "1",
						"secondary_private_ips.0":                n.s1,
						"secondary_private_ip_count":             "1",
						"public_ip":                              "elastic",
						"public_ip_address":                      n.primaryPub,
						"elastic_ip_per_secondary":               "false",
						"elastic_ip_allocation_ids.%":            "1",
						"elastic_ip_allocation_ids." + n.primary: n.primaryEIP,
					}
					for k, v := range want {
						if a[k] != v {
							return fmt.Errorf("imported %s = %q, want %q", k, a[k], v)
						}
					}
					return nil
				},
			},
			{
				// The configuration matches what was imported.
				Config: cfg(1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// Dropping the owned secondary unassigns it and nothing else; the
				// Elastic IP tagged as the node's, unused, is released.
				Config: cfg(0),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testNode, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListSizeExact(0)),
						lazyPlanCheck(func() plancheck.PlanCheck {
							return plancheck.ExpectKnownValue(testNode, at("public_ip_address"), knownvalue.StringExact(n.primaryPub))
						}),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_allocation_ids"), knownvalue.MapSizeExact(1)),
				},
				Check: func(*terraform.State) error {
					ni, err := describeENI(context.Background(), env.EC2(), n.eni)
					if err != nil {
						return err
					}
					if got := orderIPs(nil, eniSecondaryIPs(ni)); len(got) != 1 || got[0] != n.s2 {
						return fmt.Errorf("interface secondaries %v, want only the unowned %s", got, n.s2)
					}
					out, err := env.EC2().DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{})
					if err != nil {
						return err
					}
					seen := map[string]string{}
					for _, a := range out.Addresses {
						seen[aws.ToString(a.AllocationId)] = aws.ToString(a.PrivateIpAddress)
					}
					switch {
					case seen[n.primaryEIP] != n.primary:
						return fmt.Errorf("the hand-made Elastic IP left the primary: %v", seen)
					case seen[n.s2EIP] != n.s2:
						return fmt.Errorf("the Elastic IP on the unowned %s was touched: %v", n.s2, seen)
					}
					if _, ok := seen[n.handedOver]; ok {
						return fmt.Errorf("the unused Elastic IP tagged as the node's (%s) was not released", n.handedOver)
					}
					return nil
				},
			},
			{
				ResourceName:      testNode,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) { return importID("")(s) },
			},
		},
	})
}

func TestParseImportID(t *testing.T) {
	for _, tc := range []struct {
		in     string
		listed bool
		ips    string
		err    string
	}{
		{in: "i-0123", ips: ""},
		{in: "i-0123:", listed: true, ips: ""},
		{in: "i-0123:10.0.1.20,10.0.1.21", listed: true, ips: "10.0.1.20,10.0.1.21"},
		{in: "i-0123: 10.0.1.20 ", listed: true, ips: "10.0.1.20"},
		{in: "eni-0123", err: "expected an instance ID"},
		{in: "i-", err: "expected an instance ID"},
		{in: "i-0123:10.0.1", err: `"10.0.1" is not an IPv4 address`},
		{in: "i-0123:10.0.1.20,10.0.1.20", err: "lists 10.0.1.20 twice"},
		{in: "i-0123:fd00::1", err: "is not an IPv4 address"},
	} {
		got, err := parseImportID(tc.in, "i-", "an instance ID")
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case got.id != "i-0123" || got.listed != tc.listed || strings.Join(got.secondaries, ",") != tc.ips:
			t.Errorf("%q: %+v", tc.in, got)
		}
	}
}
