package provider

// Acceptance-test harness shared by every *_acc_test.go in this package
// (the module acceptance test too). Tests run the real terraform binary
// through terraform-plugin-testing against an in-process ec2sim, or against
// real AWS when WSDIRECT_ACC_AWS=1.
//
// Environment:
//   TF_ACC=1                    run acceptance tests at all (else they skip)
//   TF_ACC_TERRAFORM_PATH       terraform binary; defaults to <repo>/bin/terraform when present
//   WSDIRECT_ACC_AWS=1          use real AWS instead of ec2sim; then also
//     AWS credentials and AWS_REGION (the usual SDK variables),
//     WSDIRECT_ACC_SUBNET_ID, WSDIRECT_ACC_SUBNET_ID_2 (optional, defaults to the first),
//     WSDIRECT_ACC_SECURITY_GROUP_ID, WSDIRECT_ACC_SECURITY_GROUP_ID_2 (optional),
//     WSDIRECT_ACC_AMI

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim/ec2simtest"
)

// testAccProtoV6ProviderFactories serves the provider in-process to the
// terraform binary under the name "wsdirect".
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"wsdirect": providerserver.NewProtocol6WithError(New("test")()),
}

// testAccAWS reports whether acceptance tests target real AWS.
func testAccAWS() bool { return os.Getenv("WSDIRECT_ACC_AWS") == "1" }

// testAccPreCheck prepares the terraform environment: an empty CLI config
// (the machine default may point at a missing file), no checkpoint calls,
// and the repository's terraform binary unless TF_ACC_TERRAFORM_PATH is set.
// It skips the test when TF_ACC is unset, and checks the AWS variables when
// WSDIRECT_ACC_AWS=1. Call it before resource.Test (not only as PreCheck):
// it uses t.Setenv, so tests using it cannot be parallel.
func testAccPreCheck(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance tests skipped unless TF_ACC=1")
	}
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
	if testAccAWS() {
		for _, v := range []string{"WSDIRECT_ACC_SUBNET_ID", "WSDIRECT_ACC_SECURITY_GROUP_ID", "WSDIRECT_ACC_AMI"} {
			if os.Getenv(v) == "" {
				t.Fatalf("WSDIRECT_ACC_AWS=1 needs %s", v)
			}
		}
	}
}

// testAccEnv is what a test needs to write configurations and check
// results, against ec2sim or real AWS alike.
type testAccEnv struct {
	Sim         *ec2sim.Server // nil against real AWS
	ProviderHCL string         // a provider "wsdirect" block
	Subnet      string         // in the sim: subnet-00000001, 10.0.1.0/24
	Subnet2     string         // in the sim: subnet-00000002, 10.0.2.0/24
	SG          string
	SG2         string
	AMI         string
	client      *ec2.Client

	// ForeignEIPs are allocation IDs of Elastic IPs a test allocated outside
	// Terraform: checkDestroyed requires them to survive the destroy, then
	// releases them.
	ForeignEIPs []string
}

// newTestAccEnv runs testAccPreCheck and starts an ec2sim with cfg (closed
// at test end), or, with WSDIRECT_ACC_AWS=1, describes real AWS from the
// environment. Tests that inject faults should skip when env.Sim is nil.
func newTestAccEnv(t *testing.T, cfg ec2sim.Config) *testAccEnv {
	t.Helper()
	testAccPreCheck(t)
	if testAccAWS() {
		awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		env := &testAccEnv{
			ProviderHCL: "provider \"wsdirect\" {\n  max_retries = 10\n}\n",
			Subnet:      os.Getenv("WSDIRECT_ACC_SUBNET_ID"),
			Subnet2:     envOr("WSDIRECT_ACC_SUBNET_ID_2", os.Getenv("WSDIRECT_ACC_SUBNET_ID")),
			SG:          os.Getenv("WSDIRECT_ACC_SECURITY_GROUP_ID"),
			SG2:         envOr("WSDIRECT_ACC_SECURITY_GROUP_ID_2", os.Getenv("WSDIRECT_ACC_SECURITY_GROUP_ID")),
			AMI:         os.Getenv("WSDIRECT_ACC_AMI"),
			client:      ec2.NewFromConfig(awsCfg),
		}
		return env
	}
	// Keep the machine's AWS settings out of the provider's way.
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "aws-credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if cfg.Logf == nil && os.Getenv("WSDIRECT_ACC_SIM_LOG") != "" {
		cfg.Logf = t.Logf
	}
	sim := ec2simtest.New(t, cfg)
	t.Cleanup(sim.Close)
	return &testAccEnv{
		Sim:         sim,
		ProviderHCL: testAccSimProviderHCL(sim, 10),
		Subnet:      "subnet-00000001",
		Subnet2:     "subnet-00000002",
		SG:          "sg-00000001",
		SG2:         "sg-00000002",
		AMI:         "ami-12345678",
		client:      sim.EC2Client(context.Background()),
	}
}

// newTestAccEnvSim is newTestAccEnv for tests that need the emulator (fault
// injection): it skips against real AWS.
func newTestAccEnvSim(t *testing.T, cfg ec2sim.Config) *testAccEnv {
	t.Helper()
	if testAccAWS() {
		t.Skip("needs ec2sim (fault injection); skipped with WSDIRECT_ACC_AWS=1")
	}
	return newTestAccEnv(t, cfg)
}

// testAccSimProviderHCL is a provider block for sim with static test keys.
func testAccSimProviderHCL(sim *ec2sim.Server, maxRetries int) string {
	return fmt.Sprintf(`
provider "wsdirect" {
  region      = "us-east-1"
  access_key  = %q
  secret_key  = %q
  max_retries = %d
  endpoints {
    ec2 = %q
    sts = %q
  }
}
`, ec2sim.TestAccessKeyID, ec2sim.TestSecretAccessKey, maxRetries, sim.URL(), sim.URL())
}

// EC2 returns a client for out-of-band changes (drift) and checks.
func (e *testAccEnv) EC2() *ec2.Client { return e.client }

// config prepends the provider block to a test configuration.
func (e *testAccEnv) config(body string, args ...any) string {
	return e.ProviderHCL + fmt.Sprintf(body, args...)
}

// checkDestroyed is a CheckDestroy: no instance of the state is still
// alive, and no Elastic IP of any node (or, in the sim, none but the
// test's ForeignEIPs) is left; the ForeignEIPs are, unassociated.
func (e *testAccEnv) checkDestroyed(s *terraform.State) error {
	ctx := context.Background()
	if err := e.checkForeignEIPsSurvived(ctx); err != nil {
		return err
	}
	var ids []string
	for _, rs := range s.RootModule().Resources {
		if rs.Type == "wsdirect_node" && rs.Primary != nil && rs.Primary.ID != "" {
			ids = append(ids, rs.Primary.ID)
		}
	}
	if e.Sim != nil {
		for _, in := range e.Sim.Instances() {
			if in.State != "terminated" {
				return fmt.Errorf("instance %s still %s", in.ID, in.State)
			}
		}
		for _, a := range e.Sim.Addresses() {
			if !contains(e.ForeignEIPs, a.AllocationID) {
				return fmt.Errorf("Elastic IP %s (%s) leaked", a.AllocationID, a.PublicIP)
			}
		}
		return e.releaseForeignEIPs(ctx)
	}
	for _, id := range ids {
		inst, err := describeInstance(ctx, e.client, id)
		if err == nil && instanceState(inst) != ec2types.InstanceStateNameTerminated {
			return fmt.Errorf("instance %s still %s", id, instanceState(inst))
		}
	}
	out, err := e.client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		return err
	}
	for _, a := range out.Addresses {
		for _, t := range a.Tags {
			if aws.ToString(t.Key) == tagEIPOwner && contains(ids, aws.ToString(t.Value)) {
				return fmt.Errorf("Elastic IP %s of %s leaked", aws.ToString(a.AllocationId), aws.ToString(t.Value))
			}
		}
	}
	return e.releaseForeignEIPs(ctx)
}

// checkForeignEIPsSurvived: every Elastic IP the test allocated outside
// Terraform is still allocated, and no longer associated (its instance is
// gone).
func (e *testAccEnv) checkForeignEIPsSurvived(ctx context.Context) error {
	if len(e.ForeignEIPs) == 0 {
		return nil
	}
	out, err := e.client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: e.ForeignEIPs})
	if err != nil {
		return fmt.Errorf("Elastic IPs allocated outside Terraform did not survive the destroy: %w", err)
	}
	if len(out.Addresses) != len(e.ForeignEIPs) {
		return fmt.Errorf("%d of the %d Elastic IPs allocated outside Terraform survived the destroy", len(out.Addresses), len(e.ForeignEIPs))
	}
	for _, a := range out.Addresses {
		if a.AssociationId != nil {
			return fmt.Errorf("Elastic IP %s is still associated with %s after the destroy", aws.ToString(a.AllocationId), aws.ToString(a.InstanceId))
		}
	}
	return nil
}

// releaseForeignEIPs cleans up after checkForeignEIPsSurvived.
func (e *testAccEnv) releaseForeignEIPs(ctx context.Context) error {
	for _, id := range e.ForeignEIPs {
		if _, err := e.client.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: aws.String(id)}); err != nil {
			return fmt.Errorf("releasing the test's own Elastic IP %s: %w", id, err)
		}
	}
	e.ForeignEIPs = nil
	return nil
}

// captureAttr is a TestCheckFunc storing a resource attribute in *dst, so
// later steps (PreConfig drift, comparisons) can use it.
func captureAttr(addr, attr string, dst *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s not in state", addr)
		}
		*dst = rs.Primary.Attributes[attr]
		if *dst == "" {
			return fmt.Errorf("%s has no %s", addr, attr)
		}
		return nil
	}
}

// checkAttrEquals checks a resource attribute against a value captured in
// an earlier step (or its opposite with want=false).
func checkAttrEquals(addr, attr string, other *string, want bool) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s not in state", addr)
		}
		got := rs.Primary.Attributes[attr]
		if (got == *other) != want {
			return fmt.Errorf("%s.%s = %q, compared with %q: want equal=%v", addr, attr, got, *other, want)
		}
		return nil
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// hclList renders Go strings as an HCL list.
func hclList(ss ...string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
