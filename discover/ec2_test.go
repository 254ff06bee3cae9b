package discover

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim/ec2simtest"
)

func TestParseTag(t *testing.T) {
	for _, tc := range []struct {
		in, key, value, err string
	}{
		{in: "wsdirect-cluster=prod", key: "wsdirect-cluster", value: "prod"},
		{in: " Name =a=b", key: "Name", value: "a=b"},
		{in: "k=v with space", key: "k", value: "v with space"},
		{in: "novalue", err: "want Key=Value"},
		{in: "=prod", err: "empty key"},
		{in: "  =prod", err: "empty key"},
		{in: "k=", err: "empty value"},
		{in: strings.Repeat("k", 129) + "=v", err: "EC2 allows 128"},
		{in: "k=" + strings.Repeat("v", 257), err: "EC2 allows 256"},
	} {
		k, v, err := ParseTag(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTag(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || k != tc.key || v != tc.value {
			t.Errorf("ParseTag(%q) = %q, %q, %v; want %q, %q", tc.in, k, v, err, tc.key, tc.value)
		}
	}
}

// launch starts n t3.micro instances with tags and returns their private IPs
// and IDs.
func launch(t *testing.T, c *ec2.Client, n int32, tags map[string]string) (ips, ids []string) {
	t.Helper()
	in := &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(n), MaxCount: aws.Int32(n), SubnetId: aws.String("subnet-00000001"),
	}
	if len(tags) > 0 {
		ts := types.TagSpecification{ResourceType: types.ResourceTypeInstance}
		for k, v := range tags {
			ts.Tags = append(ts.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = []types.TagSpecification{ts}
	}
	out, err := c.RunInstances(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range out.Instances {
		ips = append(ips, aws.ToString(inst.PrivateIpAddress))
		ids = append(ids, aws.ToString(inst.InstanceId))
	}
	return ips, ids
}

func sortIPs(ips []string) []string {
	out := slices.Clone(ips)
	slices.SortFunc(out, func(a, b string) int {
		return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b))
	})
	return out
}

func TestEC2Tag(t *testing.T) {
	ctx := context.Background()
	conf := ec2sim.DefaultConfig()
	conf.PendingDescribes = 0 // running from the first describe on
	srv := ec2simtest.New(t, conf)
	defer srv.Close()
	c := srv.EC2Client(ctx)

	old := pageSize
	pageSize = 5 // 12 tagged instances span several pages
	defer func() { pageSize = old }()

	want, ids := launch(t, c, 12, map[string]string{"wsdirect-cluster": "prod", "Name": "node"})
	launch(t, c, 3, map[string]string{"wsdirect-cluster": "staging"})
	launch(t, c, 2, nil)
	// Terminated members must not be joined.
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:2]}); err != nil {
		t.Fatal(err)
	}
	want = sortIPs(want[2:])

	cc := &countingAPI{api: c}
	got, err := EC2Tag(ctx, cc, "wsdirect-cluster", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("EC2Tag = %v\nwant     %v", got, want)
	}
	if cc.calls < 2 {
		t.Fatalf("EC2Tag made %d DescribeInstances calls for 10 results at page size 5; want pagination", cc.calls)
	}

	none, err := EC2Tag(ctx, c, "wsdirect-cluster", "nobody")
	if err != nil || len(none) != 0 {
		t.Fatalf("EC2Tag for an unused tag = %v, %v; want none, no error", none, err)
	}
}

func TestEC2TagSkipsPending(t *testing.T) {
	ctx := context.Background()
	conf := ec2sim.DefaultConfig()
	conf.PendingDescribes = 1 // the first describe still sees "pending"
	srv := ec2simtest.New(t, conf)
	defer srv.Close()
	c := srv.EC2Client(ctx)
	want, _ := launch(t, c, 2, map[string]string{"role": "wsdirect"})

	got, err := EC2Tag(ctx, c, "role", "wsdirect")
	if err != nil || len(got) != 0 {
		t.Fatalf("first EC2Tag while pending = %v, %v; want none", got, err)
	}
	got, err = EC2Tag(ctx, c, "role", "wsdirect")
	if err != nil || !slices.Equal(got, sortIPs(want)) {
		t.Fatalf("EC2Tag once running = %v, %v; want %v", got, err, sortIPs(want))
	}
}

type countingAPI struct {
	api   DescribeInstancesAPI
	calls int
}

func (c *countingAPI) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	c.calls++
	return c.api.DescribeInstances(ctx, in, optFns...)
}

type fakeAPI struct {
	pages []*ec2.DescribeInstancesOutput
	err   error
	calls int
}

func (f *fakeAPI) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	i := 0
	if in.NextToken != nil {
		i = int(aws.ToString(in.NextToken)[0] - '0')
	}
	return f.pages[i], nil
}

func reservation(ips ...string) types.Reservation {
	var r types.Reservation
	for _, ip := range ips {
		inst := types.Instance{}
		if ip != "" {
			inst.PrivateIpAddress = aws.String(ip)
		}
		r.Instances = append(r.Instances, inst)
	}
	return r
}

func TestEC2TagDedupAndOrder(t *testing.T) {
	f := &fakeAPI{pages: []*ec2.DescribeInstancesOutput{
		{Reservations: []types.Reservation{reservation("10.0.0.10", "10.0.0.9")}, NextToken: aws.String("1")},
		{Reservations: []types.Reservation{reservation("10.0.0.9", "", "10.0.1.2")}},
	}}
	got, err := EC2Tag(context.Background(), f, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.9", "10.0.0.10", "10.0.1.2"}; !slices.Equal(got, want) || f.calls != 2 {
		t.Fatalf("EC2Tag = %v after %d calls, want %v after 2", got, f.calls, want)
	}
}

func TestEC2TagErrors(t *testing.T) {
	boom := errors.New("UnauthorizedOperation")
	_, err := EC2Tag(context.Background(), &fakeAPI{err: boom}, "k", "v")
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "tag:k=v") {
		t.Fatalf("EC2Tag error = %v, want wrapped %v naming the tag", err, boom)
	}
	if _, err := EC2Tag(context.Background(), nil, "k", "v"); err == nil {
		t.Fatal("nil client accepted")
	}
	if _, err := EC2Tag(context.Background(), &fakeAPI{}, "", "v"); err == nil {
		t.Fatal("empty key accepted")
	}
}

func TestNewEC2Client(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", ec2sim.TestAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ec2sim.TestSecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	ctx := context.Background()
	conf := ec2sim.DefaultConfig()
	conf.PendingDescribes = 0
	srv := ec2simtest.New(t, conf)
	defer srv.Close()
	want, _ := launch(t, srv.EC2Client(ctx), 3, map[string]string{"cluster": "a"})

	c, err := NewEC2Client(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	got, err := EC2Tag(ctx, c, "cluster", "a")
	if err != nil || !slices.Equal(got, sortIPs(want)) {
		t.Fatalf("EC2Tag through NewEC2Client = %v, %v; want %v", got, err, sortIPs(want))
	}

	for _, bad := range []string{"localhost:4566", "ftp://x", "http://"} {
		if _, err := NewEC2Client(ctx, bad); err == nil || !strings.Contains(err.Error(), "absolute http(s) URL") {
			t.Errorf("NewEC2Client(%q) error = %v", bad, err)
		}
	}
}
