package provider

import (
	"context"
	"fmt"
	"regexp"
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

func metadataCheck(tokens string, hops int64, endpoint string) knownvalue.Check {
	return knownvalue.ObjectExact(map[string]knownvalue.Check{
		"http_tokens":                 knownvalue.StringExact(tokens),
		"http_put_response_hop_limit": knownvalue.Int64Exact(hops),
		"http_endpoint":               knownvalue.StringExact(endpoint),
	})
}

// checkIMDS compares what EC2 holds for the node with the expected options.
func (e *testAccEnv) checkIMDS(tokens string, hops int32, endpoint string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		id := s.RootModule().Resources[testNode].Primary.ID
		inst, err := describeInstance(context.Background(), e.EC2(), id)
		if err != nil {
			return err
		}
		mo := inst.MetadataOptions
		if mo == nil || string(mo.HttpTokens) != tokens || aws.ToInt32(mo.HttpPutResponseHopLimit) != hops || string(mo.HttpEndpoint) != endpoint {
			return fmt.Errorf("EC2 has metadata options %+v, want %s/%d/%s", mo, tokens, hops, endpoint)
		}
		return nil
	}
}

// TestAccNode_metadataOptions: a node requires IMDSv2 with one hop unless
// told otherwise (EC2's own default still allows IMDSv1); the options
// change in place, drift made out of band is repaired, and import reads
// them back. user_data is sensitive in the plan.
func TestAccNode_metadataOptions(t *testing.T) {
	env := newTestAccEnv(t, ec2sim.DefaultConfig())
	var id string
	const ud = "  user_data = \"#cloud-config\\nruncmd: [[echo, hello]]\\n\"\n"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		// Error steps first: the post-test destroy runs the last step's
		// config, which must be valid.
		Steps: []resource.TestStep{
			{
				Config:      env.nodeConfig("t3.micro", ud+"  metadata_options = { http_put_response_hop_limit = 0 }\n"),
				ExpectError: regexp.MustCompile(`(?s)http_put_response_hop_limit\s+value\s+must\s+be\s+between\s+1\s+and\s+64`),
			},
			{
				Config:      env.nodeConfig("t3.micro", ud+"  metadata_options = { http_tokens = \"v1\" }\n"),
				ExpectError: regexp.MustCompile(`(?s)http_tokens.*"required".*"optional"`),
			},
			{
				Config: env.nodeConfig("t3.micro", ud),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testNode, plancheck.ResourceActionCreate),
						plancheck.ExpectSensitiveValue(testNode, at("user_data")),
						plancheck.ExpectKnownValue(testNode, at("metadata_options"), metadataCheck("required", 1, "enabled")),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("metadata_options"), metadataCheck("required", 1, "enabled")),
					statecheck.ExpectSensitiveValue(testNode, at("user_data")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(captureAttr(testNode, "id", &id), env.checkIMDS("required", 1, "enabled")),
			},
			{
				// One option given: the others keep their defaults, in place.
				Config:           env.nodeConfig("t3.micro", ud+"  metadata_options = { http_put_response_hop_limit = 2 }\n"),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("metadata_options"), metadataCheck("required", 2, "enabled")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(checkAttrEquals(testNode, "id", &id, true), env.checkIMDS("required", 2, "enabled")),
			},
			{
				Config: env.nodeConfig("t3.micro", ud+`  metadata_options = {
    http_tokens                 = "optional"
    http_put_response_hop_limit = 3
    http_endpoint               = "disabled"
  }
`),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("metadata_options"), metadataCheck("optional", 3, "disabled")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(checkAttrEquals(testNode, "id", &id, true), env.checkIMDS("optional", 3, "disabled")),
			},
			{
				// Back to the defaults by removing the block; then someone
				// re-enables IMDSv1 out of band, which the next plan undoes.
				Config:           env.nodeConfig("t3.micro", ud),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				Check:            env.checkIMDS("required", 1, "enabled"),
			},
			{
				PreConfig: func() {
					if _, err := env.EC2().ModifyInstanceMetadataOptions(context.Background(), &ec2.ModifyInstanceMetadataOptionsInput{
						InstanceId: aws.String(id), HttpTokens: ec2types.HttpTokensStateOptional,
					}); err != nil {
						t.Fatalf("drift: %v", err)
					}
				},
				Config:           env.nodeConfig("t3.micro", ud),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				Check:            resource.ComposeAggregateTestCheckFunc(checkAttrEquals(testNode, "id", &id, true), env.checkIMDS("required", 1, "enabled")),
			},
			{
				ResourceName:      testNode,
				ImportState:       true,
				ImportStateVerify: true,
			},
		},
	})
}
