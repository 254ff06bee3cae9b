package provider

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

// lazyPlanCheck builds its plan check when it runs, so a step can check
// values and map keys (private IPs, allocation IDs) captured by earlier
// steps.
type lazyPlanCheck func() plancheck.PlanCheck

func (f lazyPlanCheck) CheckPlan(ctx context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	f().CheckPlan(ctx, req, resp)
}

// captured is a knownvalue.Check against a string captured by an earlier
// step.
func captured(p *string) knownvalue.Check { return capturedCheck{p} }

type capturedCheck struct{ p *string }

func (c capturedCheck) CheckValue(v any) error { return knownvalue.StringExact(*c.p).CheckValue(v) }
func (c capturedCheck) String() string         { return *c.p }

// TestAccNode_planKeepsAddresses: a secondary-count change plans no change
// to what it cannot change. The primary's public address, DNS name and
// Elastic IP stay known, so do the Elastic IPs and places of kept
// secondaries; only what EC2 has yet to pick is "(known after apply)".
func TestAccNode_planKeepsAddresses(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	cfg := func(n int, per bool) string {
		return env.nodeConfig("t3.medium", fmt.Sprintf(`
  secondary_private_ip_count = %d
  public_ip                  = "elastic"
  elastic_ip_per_secondary   = %v`, n, per))
	}
	var id, primary, publicIP, dns, primaryAlloc, first, firstAlloc string
	eips := func() string { return "elastic_ip_allocation_ids" }
	keepsPrimary := func() []plancheck.PlanCheck {
		return []plancheck.PlanCheck{
			plancheck.ExpectResourceAction(testNode, plancheck.ResourceActionUpdate),
			plancheck.ExpectKnownValue(testNode, at("id"), captured(&id)),
			plancheck.ExpectKnownValue(testNode, at("public_ip_address"), captured(&publicIP)),
			plancheck.ExpectKnownValue(testNode, at("public_dns"), captured(&dns)),
			lazyPlanCheck(func() plancheck.PlanCheck {
				return plancheck.ExpectKnownValue(testNode, at(eips()).AtMapKey(primary), knownvalue.StringExact(primaryAlloc))
			}),
		}
	}
	same := resource.ComposeAggregateTestCheckFunc(
		checkAttrEquals(testNode, "id", &id, true),
		checkAttrEquals(testNode, "public_ip_address", &publicIP, true),
		checkAttrEquals(testNode, "public_dns", &dns, true),
	)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           cfg(1, false),
				ConfigPlanChecks: emptyPlanAfterApply(),
				Check: resource.ComposeAggregateTestCheckFunc(
					captureAttr(testNode, "id", &id),
					captureAttr(testNode, "private_ip", &primary),
					captureAttr(testNode, "public_ip_address", &publicIP),
					captureAttr(testNode, "public_dns", &dns),
					captureAttr(testNode, "secondary_private_ips.0", &first),
					func(s *terraform.State) error {
						primaryAlloc = s.RootModule().Resources[testNode].Primary.Attributes[eips()+"."+primary]
						if primaryAlloc == "" {
							return fmt.Errorf("no Elastic IP recorded for the primary %s", primary)
						}
						return nil
					},
				),
			},
			{
				// Grow: the recorded address keeps its place, two unknown ones follow;
				// only the primary carries an Elastic IP, so the map is known.
				Config: cfg(3, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: append(keepsPrimary(),
						plancheck.ExpectKnownValue(testNode, at("secondary_private_ip_count"), knownvalue.Int64Exact(3)),
						plancheck.ExpectKnownValue(testNode, at("secondary_private_ips").AtSliceIndex(0), captured(&first)),
						plancheck.ExpectUnknownValue(testNode, at("secondary_private_ips").AtSliceIndex(1)),
						plancheck.ExpectUnknownValue(testNode, at("secondary_private_ips").AtSliceIndex(2)),
						plancheck.ExpectKnownValue(testNode, at(eips()), knownvalue.MapSizeExact(1)),
					),
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListSizeExact(3)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(same, env.checkAddressCount(1)),
			},
			{
				// Shrink: the plan names what stays.
				Config: cfg(1, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: append(keepsPrimary(),
						plancheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListExact([]knownvalue.Check{captured(&first)})),
						plancheck.ExpectKnownValue(testNode, at(eips()), knownvalue.MapSizeExact(1)),
					),
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: same,
			},
			{
				// An Elastic IP per secondary: the kept secondary gains one (unknown),
				// the primary's stays.
				Config: cfg(1, true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: append(keepsPrimary(),
						plancheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListExact([]knownvalue.Check{captured(&first)})),
						lazyPlanCheck(func() plancheck.PlanCheck {
							return plancheck.ExpectUnknownValue(testNode, at(eips()).AtMapKey(first))
						}),
					),
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(same, env.checkAddressCount(2), func(s *terraform.State) error {
					firstAlloc = s.RootModule().Resources[testNode].Primary.Attributes[eips()+"."+first]
					return nil
				}),
			},
			{
				// Grow with an Elastic IP per secondary: the map's keys are EC2's to
				// pick, so it is unknown; the public address is not.
				Config: cfg(2, true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: append(keepsPrimary()[:4],
						plancheck.ExpectUnknownValue(testNode, at(eips())),
					),
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(same, env.checkAddressCount(3)),
			},
			{
				// Shrink with an Elastic IP per secondary: both kept Elastic IPs are
				// known; the dropped address's is released.
				Config: cfg(1, true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: append(keepsPrimary(),
						lazyPlanCheck(func() plancheck.PlanCheck {
							return plancheck.ExpectKnownValue(testNode, at(eips()), knownvalue.MapExact(map[string]knownvalue.Check{
								primary: knownvalue.StringExact(primaryAlloc),
								first:   knownvalue.StringExact(firstAlloc),
							}))
						}),
					),
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(same, env.checkAddressCount(2)),
			},
		},
	})
}

// hookEC2 wraps an EC2 client and, once armed, runs before ahead of the
// next AssignPrivateIpAddresses call: a change made between plan and apply.
type hookEC2 struct {
	EC2API
	armed  atomic.Bool
	before func()
}

func (h *hookEC2) AssignPrivateIpAddresses(ctx context.Context, in *ec2.AssignPrivateIpAddressesInput, opts ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error) {
	if h.armed.CompareAndSwap(true, false) {
		h.before()
	}
	return h.EC2API.AssignPrivateIpAddresses(ctx, in, opts...)
}

// TestAccNode_changedAfterPlan: the primary's Elastic IP is released after
// the plan promised to keep it. The apply fails with an error that says so
// (not Terraform's "inconsistent result after apply"), the node is saved as
// it is, and the next plan is empty.
func TestAccNode_changedAfterPlan(t *testing.T) {
	env := newTestAccEnvSim(t, ec2sim.DefaultConfig())
	var id, primary string
	hook := &hookEC2{before: func() { env.releaseEIPOf(t, &id, &primary) }}
	factories := map[string]func() (tfprotov6.ProviderServer, error){
		"wsdirect": providerserver.NewProtocol6WithError(New("test", WithEC2ClientFactory(func(ctx context.Context, c ClientConfig) (EC2API, error) {
			api, err := NewEC2Client(ctx, c)
			if err != nil {
				return nil, err
			}
			hook.EC2API = api
			return hook, nil
		}))()),
	}
	cfg := func(n int) string {
		return env.nodeConfig("t3.small", fmt.Sprintf(`
  secondary_private_ip_count = %d
  public_ip                  = "elastic"`, n))
	}
	var publicIP string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: cfg(0),
				Check: resource.ComposeAggregateTestCheckFunc(
					captureAttr(testNode, "id", &id),
					captureAttr(testNode, "private_ip", &primary),
					captureAttr(testNode, "public_ip_address", &publicIP),
				),
			},
			{
				PreConfig: func() { hook.armed.Store(true) },
				Config:    cfg(1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectKnownValue(testNode, at("public_ip_address"), captured(&publicIP))},
				},
				ExpectError: wrappedRegexp(`changed outside Terraform after the plan was made: public_ip_address is`),
			},
			{
				// The node was saved as it is: a new Elastic IP on the primary and
				// the new secondary, nothing left to do.
				Config:           cfg(1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("secondary_private_ips"), knownvalue.ListSizeExact(1)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testNode, "id", &id, true),
					checkAttrEquals(testNode, "public_ip_address", &publicIP, false),
					env.checkPublicIPIsEIP(testNode),
					env.checkAddressCount(1),
				),
			},
		},
	})
}

func TestPlanCountSecondaries(t *testing.T) {
	state := &nodeModel{SecondaryPrivateIPs: stringListValue([]string{"10.0.1.7", "10.0.1.5"})}
	for _, tc := range []struct {
		count types.Int64
		want  string
	}{
		{types.Int64Value(2), `["10.0.1.7","10.0.1.5"]`},
		{types.Int64Value(1), `["10.0.1.7"]`},
		{types.Int64Value(0), `[]`},
		{types.Int64Value(4), `["10.0.1.7","10.0.1.5",<unknown>,<unknown>]`},
		{types.Int64Unknown(), `<unknown>`},
	} {
		if got := planCountSecondaries(state, tc.count).String(); got != tc.want {
			t.Errorf("count %v: planned %s, want %s", tc.count, got, tc.want)
		}
	}
	if got := planCountSecondaries(nil, types.Int64Value(1)); !got.IsUnknown() {
		t.Errorf("create: planned %s, want unknown", got)
	}
}

func TestPlannedMismatch(t *testing.T) {
	plan := &nodeModel{
		PublicIPAddress:     types.StringValue("198.51.100.7"),
		PublicDNS:           types.StringUnknown(),
		SecondaryPrivateIPs: types.ListValueMust(types.StringType, []attr.Value{types.StringValue("10.0.1.7"), types.StringUnknown()}),
		ElasticIPAllocationIDs: types.MapValueMust(types.StringType, map[string]attr.Value{
			"10.0.1.4": types.StringValue("eipalloc-1"), "10.0.1.7": types.StringUnknown(),
		}),
	}
	got := &nodeModel{
		PublicIPAddress:        types.StringValue("198.51.100.7"),
		PublicDNS:              types.StringValue("ec2-198-51-100-7.compute-1.amazonaws.com"),
		SecondaryPrivateIPs:    stringListValue([]string{"10.0.1.7", "10.0.1.9"}),
		ElasticIPAllocationIDs: stringMapValue(map[string]string{"10.0.1.4": "eipalloc-1", "10.0.1.7": "eipalloc-2"}),
	}
	if m := plannedMismatch(plan, got); len(m) != 0 {
		t.Fatalf("outcome within the plan reported as %v", m)
	}
	got.PublicIPAddress = types.StringValue("198.51.100.9")
	got.SecondaryPrivateIPs = stringListValue([]string{"10.0.1.8", "10.0.1.9"})
	got.ElasticIPAllocationIDs = stringMapValue(map[string]string{"10.0.1.4": "eipalloc-3", "10.0.1.9": "eipalloc-2"})
	m := strings.Join(plannedMismatch(plan, got), "; ")
	for _, want := range []string{
		`public_ip_address is "198.51.100.9", planned "198.51.100.7"`,
		`secondary_private_ips[0] is "10.0.1.8", planned "10.0.1.7"`,
		`the Elastic IP of 10.0.1.4 is "eipalloc-3", planned "eipalloc-1"`,
		`10.0.1.7 has no Elastic IP, planned one`,
		`10.0.1.9 has an Elastic IP, planned none`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("mismatch %q lacks %q", m, want)
		}
	}
}
