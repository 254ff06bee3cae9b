package ec2sim

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestFailNext(t *testing.T) {
	s, c := newTest(t, nil)
	ctx := context.Background()
	s.FailNext("DescribeSubnets", "UnauthorizedOperation", 2)
	for range 2 {
		_, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
		wantCode(t, err, "UnauthorizedOperation")
	}
	out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil || len(out.Subnets) != 2 {
		t.Fatalf("third call: %v %+v", err, out)
	}
	if n := s.CallCount("DescribeSubnets"); n != 3 {
		t.Fatalf("CallCount = %d, want 3", n)
	}
	// With the standard retryer an injected 500 is retried away.
	s.FailNext("DescribeSubnets", "InternalError", 1)
	rc := s.EC2Client(ctx)
	if _, err := rc.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatalf("retried call: %v", err)
	}
	if n := s.CallCount("DescribeSubnets"); n != 5 {
		t.Fatalf("CallCount = %d, want 5 (one failure + one retry)", n)
	}
}

func TestThrottling(t *testing.T) {
	s, c := newTest(t, func(c *Config) { c.ThrottleRate = 1 })
	ctx := context.Background()
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	wantCode(t, err, codeRequestLimitExceeded)
	if n := s.CallCount("DescribeInstances"); n != 1 {
		t.Fatalf("no-retry client made %d calls", n)
	}

	// At rate 0.5 the SDK's standard retryer gets through every call.
	s2, _ := newTest(t, func(c *Config) { c.ThrottleRate = 0.5; c.Seed = 7 })
	rc := s2.EC2Client(ctx, func(o *ec2.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 10
			so.MaxBackoff = 1 // keep the test fast; backoff timing is the SDK's business
		})
	})
	for i := range 10 {
		if _, err := rc.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := s2.CallCount("DescribeInstances"); n <= 10 {
		t.Fatalf("%d calls for 10 operations at ThrottleRate 0.5; throttling never happened", n)
	}
}

func TestUpdateConfig(t *testing.T) {
	s, c := newTest(t, nil)
	ctx := context.Background()
	if err := s.UpdateConfig(func(c *Config) { c.ThrottleRate = 1 }); err != nil {
		t.Fatal(err)
	}
	_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	wantCode(t, err, codeRequestLimitExceeded)
	if err := s.UpdateConfig(func(c *Config) { c.ThrottleRate = 0; c.Region = "eu-west-1" }); err != nil {
		t.Fatal(err)
	}
	// A change that fails validation is refused as a whole.
	if err := s.UpdateConfig(func(c *Config) { c.ThrottleRate = 2; c.ElasticIPLimit = 3 }); err == nil || !strings.Contains(err.Error(), "ThrottleRate") {
		t.Fatalf("ThrottleRate 2 accepted: %v", err)
	}
	if s.cfg.ElasticIPLimit != 0 {
		t.Fatal("a refused UpdateConfig changed ElasticIPLimit")
	}
	if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
	out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro})
	if az := aws.ToString(out.Instances[0].Placement.AvailabilityZone); az != "us-east-1a" {
		t.Fatalf("region changed under a running server: %s", az)
	}
}

func TestThrottleStatusIs503(t *testing.T) {
	s, _ := newTest(t, func(c *Config) { c.ThrottleRate = 1 })
	resp, err := http.PostForm(s.URL(), url.Values{"Action": {"DescribeInstances"}, "Version": {ec2Version}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
}

func TestUnknownAction(t *testing.T) {
	s, _ := newTest(t, nil)
	resp, err := http.PostForm(s.URL(), url.Values{"Action": {"LaunchRocket"}, "Version": {ec2Version}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	body.Write(buf[:n])
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.String(), "<Code>InvalidAction</Code>") {
		t.Fatalf("status %d body %s", resp.StatusCode, body.String())
	}
}

func TestNotFoundAfterCreate(t *testing.T) {
	s, c := newTest(t, func(c *Config) { c.NotFoundAfterCreate = 2; c.PendingDescribes = 0 })
	ctx := context.Background()
	id := aws.ToString(run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro}).Instances[0].InstanceId)
	for range 2 {
		_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		wantCode(t, err, codeInstanceNotFound)
	}
	if describeOne(t, c, id).State.Name != types.InstanceStateNameRunning {
		t.Fatal("not running once visible")
	}
	// A second instance: an unfiltered describe hides it, and AssociateAddress sees NotFound.
	id2 := aws.ToString(run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Micro}).Instances[0].InstanceId)
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 1 {
		t.Fatalf("unfiltered describe shows %d reservations, want 1 (the new one hidden)", len(out.Reservations))
	}
	alloc, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: &id2})
	wantCode(t, err, codeInstanceNotFound)
	describeOne(t, c, id2)
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: &id2}); err != nil {
		t.Fatal(err)
	}
	if a := s.Addresses(); a[0].InstanceID != id2 {
		t.Fatalf("addresses = %+v", a)
	}
}

func TestDeterministicIDs(t *testing.T) {
	ids := func() []string {
		_, c := newTest(t, func(c *Config) { c.Seed = 42 })
		out := run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeC5Large,
			NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"), SecondaryPrivateIpAddressCount: aws.Int32(3)}}})
		in := out.Instances[0]
		r := []string{aws.ToString(in.InstanceId), aws.ToString(in.NetworkInterfaces[0].NetworkInterfaceId)}
		for _, p := range in.NetworkInterfaces[0].PrivateIpAddresses {
			r = append(r, aws.ToString(p.PrivateIpAddress))
		}
		return r
	}
	a, b := ids(), ids()
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("same seed, different results:\n%v\n%v", a, b)
	}
	if !instanceIDRe.MatchString(a[0]) || !eniIDRe.MatchString(a[1]) {
		t.Fatalf("IDs %v do not look like EC2's", a[:2])
	}
}

func TestSTS(t *testing.T) {
	s, _ := newTest(t, nil)
	ctx := context.Background()
	c := s.STSClient(ctx)
	id, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Account) != "123456789012" {
		t.Fatalf("account = %q", aws.ToString(id.Account))
	}
	out, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::210987654321:role/deploy"), RoleSessionName: aws.String("terraform"), ExternalId: aws.String("ext-1")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") || out.Credentials.Expiration == nil ||
		aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::210987654321:assumed-role/deploy/terraform" {
		t.Fatalf("AssumeRole = %+v %+v", out.Credentials, out.AssumedRoleUser)
	}
	if ar := s.AssumedRoles(); len(ar) != 1 || ar[0].ExternalID != "ext-1" {
		t.Fatalf("AssumedRoles = %+v", ar)
	}
	_, err = c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("not-an-arn"), RoleSessionName: aws.String("terraform")}, func(o *sts.Options) { o.Retryer = aws.NopRetryer{} })
	wantCode(t, err, codeValidationError)

	// The assumed credentials sign later EC2 calls; the server records the key ID.
	cfg := s.AWSConfig()
	cfg.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: *out.Credentials.AccessKeyId, SecretAccessKey: *out.Credentials.SecretAccessKey, SessionToken: *out.Credentials.SessionToken, Source: "test"}, nil
	}))
	if _, err := ec2.NewFromConfig(cfg).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
	calls := s.Calls()
	last := calls[len(calls)-1]
	if last.Action != "DescribeVpcs" || last.AccessKeyID != aws.ToString(out.Credentials.AccessKeyId) {
		t.Fatalf("last call = %+v", last)
	}
	// GetCallerIdentity signed with the session's keys reports the assumed role.
	who, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(who.Arn) != "arn:aws:sts::210987654321:assumed-role/deploy/terraform" || aws.ToString(who.Account) != "210987654321" {
		t.Fatalf("assumed identity = %s / %s", aws.ToString(who.Arn), aws.ToString(who.Account))
	}
}

// TestOtherImplementations: the switches that model EC2 implementations other than AWS.
func TestOtherImplementations(t *testing.T) {
	ctx := context.Background()
	launch := func(t *testing.T, c *ec2.Client) types.Instance {
		t.Helper()
		return run(t, c, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeT3Medium,
			NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String("subnet-00000001"),
				SecondaryPrivateIpAddressCount: aws.Int32(2)}}}).Instances[0]
	}
	t.Run("AssignAnswersAll", func(t *testing.T) {
		s, c := newTest(t, nil)
		in := launch(t, c)
		eni := in.NetworkInterfaces[0].NetworkInterfaceId
		assign := func() []string {
			t.Helper()
			out, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(1)})
			if err != nil {
				t.Fatal(err)
			}
			var ips []string
			for _, a := range out.AssignedPrivateIpAddresses {
				ips = append(ips, aws.ToString(a.PrivateIpAddress))
			}
			return ips
		}
		if got := assign(); len(got) != 1 {
			t.Fatalf("AWS's answer lists %v, want the one new address", got)
		}
		if err := s.UpdateConfig(func(c *Config) { c.AssignAnswersAll = true }); err != nil {
			t.Fatal(err)
		}
		got := assign()
		if len(got) != 5 || got[0] != aws.ToString(in.PrivateIpAddress) {
			t.Fatalf("full answer lists %v, want all 5 addresses, primary %s first", got, aws.ToString(in.PrivateIpAddress))
		}
	})
	t.Run("LaunchIgnoresSecondaryIPs", func(t *testing.T) {
		_, c := newTest(t, func(c *Config) { c.LaunchIgnoresSecondaryIPs = true })
		in := launch(t, c)
		if n := len(in.NetworkInterfaces[0].PrivateIpAddresses); n != 1 {
			t.Fatalf("interface launched with %d addresses, want the primary only", n)
		}
		// Later assignments work as usual.
		if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: in.NetworkInterfaces[0].NetworkInterfaceId,
			SecondaryPrivateIpAddressCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	})
}
