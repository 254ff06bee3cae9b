package provider

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim/ec2simtest"
)

// TestProviderSchemas checks every schema of the provider (resources, data
// sources, functions) through the protocol, as terraform would fetch them.
func TestProviderSchemas(t *testing.T) {
	srv := providerserver.NewProtocol6(New("test")())()
	resp, err := srv.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		t.Errorf("%s: %s: %s", d.Severity, d.Summary, d.Detail)
	}
	for _, name := range []string{"wsdirect_node", "wsdirect_private_ips"} {
		if resp.ResourceSchemas[name] == nil {
			t.Errorf("resource %s missing", name)
		}
	}
	if resp.DataSourceSchemas["wsdirect_nodes"] == nil {
		t.Error("data source wsdirect_nodes missing")
	}
}

// isolateAWSEnv keeps the machine's AWS settings out of a test.
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, k := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func simProviderModel(sim *ec2sim.Server) providerModel {
	return providerModel{
		Region:                 types.StringValue("us-east-1"),
		Profile:                types.StringNull(),
		SharedConfigFiles:      types.ListNull(types.StringType),
		SharedCredentialsFiles: types.ListNull(types.StringType),
		AccessKey:              types.StringValue("AKIASTATICKEY0000001"),
		SecretKey:              types.StringValue("static-secret"),
		Token:                  types.StringNull(),
		DefaultTags:            types.MapValueMust(types.StringType, nil),
		MaxRetries:             types.Int64Value(2),
		Endpoints:              []endpointsModel{{EC2: types.StringValue(sim.URL()), STS: types.StringValue(sim.URL())}},
	}
}

func describeType(t *testing.T, d *providerData) error {
	t.Helper()
	_, err := d.ec2.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{
		InstanceTypes: []ec2types.InstanceType{"t3.micro"},
	})
	return err
}

func TestConfigureClient_staticKeys(t *testing.T) {
	isolateAWSEnv(t)
	sim := ec2simtest.New(t, ec2sim.DefaultConfig())
	defer sim.Close()
	m := simProviderModel(sim)
	m.DefaultTags = stringMapValue(map[string]string{"team": "rt"})
	d, diags := configureClient(context.Background(), m, NewEC2Client)
	if diags.HasError() || d == nil {
		t.Fatalf("configure: %v", diags)
	}
	if err := describeType(t, d); err != nil {
		t.Fatal(err)
	}
	calls := sim.Calls()
	if len(calls) != 1 || calls[0].AccessKeyID != "AKIASTATICKEY0000001" {
		t.Errorf("calls = %+v, want one signed with the static key", calls)
	}
	if d.region != "us-east-1" || d.defaultTags["team"] != "rt" {
		t.Errorf("region %q, default tags %v", d.region, d.defaultTags)
	}
}

func TestConfigureClient_assumeRole(t *testing.T) {
	isolateAWSEnv(t)
	sim := ec2simtest.New(t, ec2sim.DefaultConfig())
	defer sim.Close()
	m := simProviderModel(sim)
	m.AssumeRole = []assumeRoleModel{{
		RoleARN:     types.StringValue("arn:aws:iam::123456789012:role/deployer"),
		SessionName: types.StringValue("wsdirect-test"),
		ExternalID:  types.StringValue("ext-1"),
	}}
	d, diags := configureClient(context.Background(), m, NewEC2Client)
	if diags.HasError() {
		t.Fatalf("configure: %v", diags)
	}
	if err := describeType(t, d); err != nil {
		t.Fatal(err)
	}
	if n := sim.CallCount("AssumeRole"); n != 1 {
		t.Fatalf("AssumeRole called %d times, want 1", n)
	}
	for _, c := range sim.Calls() {
		if c.Action == "DescribeInstanceTypes" && c.AccessKeyID == "AKIASTATICKEY0000001" {
			t.Errorf("EC2 call signed with the base key, not the assumed role's")
		}
	}
}

func TestConfigureClient_envFillsIn(t *testing.T) {
	isolateAWSEnv(t)
	sim := ec2simtest.New(t, ec2sim.DefaultConfig())
	defer sim.Close()
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	m := simProviderModel(sim)
	m.Region, m.AccessKey, m.SecretKey = types.StringNull(), types.StringNull(), types.StringNull()
	d, diags := configureClient(context.Background(), m, NewEC2Client)
	if diags.HasError() {
		t.Fatalf("configure: %v", diags)
	}
	if d.region != "eu-west-1" {
		t.Errorf("region = %q, want eu-west-1 from AWS_REGION", d.region)
	}
	if err := describeType(t, d); err != nil {
		t.Fatal(err)
	}
	if c := sim.Calls(); len(c) != 1 || c[0].AccessKeyID != "AKIAFROMENVIRONMENT1" {
		t.Errorf("calls = %+v, want one signed with the environment's key", c)
	}
}

func TestConfigureClient_missingRegion(t *testing.T) {
	isolateAWSEnv(t)
	sim := ec2simtest.New(t, ec2sim.DefaultConfig())
	defer sim.Close()
	m := simProviderModel(sim)
	m.Region = types.StringNull()
	_, diags := configureClient(context.Background(), m, NewEC2Client)
	if !diags.HasError() || !strings.Contains(diags[0].Summary(), "region") {
		t.Fatalf("diags = %v, want a missing-region error", diags)
	}
}

func TestConfigureClient_unknownDefers(t *testing.T) {
	isolateAWSEnv(t)
	sim := ec2simtest.New(t, ec2sim.DefaultConfig())
	defer sim.Close()
	m := simProviderModel(sim)
	m.Endpoints[0].EC2 = types.StringUnknown()
	d, diags := configureClient(context.Background(), m, NewEC2Client)
	if d != nil || diags.HasError() {
		t.Fatalf("got %v, %v; want no client and no error while the config is unknown", d, diags)
	}
}

// TestConfigureClient_maxRetries: max_retries bounds the SDK's retries of
// retryable errors.
func TestConfigureClient_maxRetries(t *testing.T) {
	isolateAWSEnv(t)
	sim := ec2simtest.New(t, ec2sim.DefaultConfig())
	defer sim.Close()
	m := simProviderModel(sim)
	m.MaxRetries = types.Int64Value(2) // 3 attempts
	d, diags := configureClient(context.Background(), m, NewEC2Client)
	if diags.HasError() {
		t.Fatal(diags)
	}
	sim.FailNext("DescribeInstanceTypes", "InternalError", 3)
	if err := describeType(t, d); err == nil {
		t.Fatal("3 failures with max_retries = 2 succeeded")
	}
	sim.FailNext("DescribeInstanceTypes", "InternalError", 2)
	if err := describeType(t, d); err != nil {
		t.Fatalf("2 failures with max_retries = 2: %v", err)
	}
}

// TestWithEC2ClientFactory: the injected factory receives the resolved
// configuration and its client is the one resources get.
func TestWithEC2ClientFactory(t *testing.T) {
	isolateAWSEnv(t)
	sim := ec2simtest.New(t, ec2sim.DefaultConfig())
	defer sim.Close()
	var got ClientConfig
	factory := func(ctx context.Context, cfg ClientConfig) (EC2API, error) {
		got = cfg
		return sim.EC2Client(ctx), nil
	}
	p := New("test", WithEC2ClientFactory(factory))().(*wsdirectProvider)
	d, diags := configureClient(context.Background(), simProviderModel(sim), p.newEC2)
	if diags.HasError() {
		t.Fatal(diags)
	}
	if got.EC2Endpoint != sim.URL() || got.AWS.Region != "us-east-1" {
		t.Errorf("factory got %+v", got)
	}
	if err := describeType(t, d); err != nil {
		t.Fatal(err)
	}
}
