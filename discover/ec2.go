package discover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// EC2 tag limits (AWS: keys up to 128 characters, values up to 256).
const (
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// pageSize is DescribeInstances' MaxResults (EC2 accepts 5..1000). A
// variable so tests can force several pages.
var pageSize int32 = 1000

// DescribeInstancesAPI is the part of the EC2 client EC2Tag uses; an
// *ec2.Client satisfies it.
type DescribeInstancesAPI interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// ParseTag splits a "Key=Value" flag value (as in -join-ec2-tag). The split
// is at the first '=', so values may contain '='. Surrounding whitespace of
// the key is ignored; the value is taken as is, since EC2 tag values may
// contain spaces.
func ParseTag(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("ec2 tag %q: want Key=Value", s)
	}
	k = strings.TrimSpace(k)
	switch {
	case k == "":
		return "", "", fmt.Errorf("ec2 tag %q: empty key (want Key=Value)", s)
	case v == "":
		return "", "", fmt.Errorf("ec2 tag %q: empty value (want Key=Value)", s)
	case len(k) > maxTagKeyLen:
		return "", "", fmt.Errorf("ec2 tag key is %d characters, EC2 allows %d", len(k), maxTagKeyLen)
	case len(v) > maxTagValueLen:
		return "", "", fmt.Errorf("ec2 tag value is %d characters, EC2 allows %d", len(v), maxTagValueLen)
	}
	return k, v, nil
}

// EC2Tag returns the primary private IPv4 addresses of the running EC2
// instances tagged key=value, sorted and without duplicates. It follows
// DescribeInstances' pagination. No match is not an error: the first
// member of a new cluster finds only itself, or nobody yet.
func EC2Tag(ctx context.Context, api DescribeInstancesAPI, key, value string) ([]string, error) {
	if api == nil {
		return nil, errors.New("ec2 tag discovery: nil EC2 client")
	}
	if key == "" || value == "" {
		return nil, fmt.Errorf("ec2 tag discovery: empty tag key or value (%q=%q)", key, value)
	}
	in := &ec2.DescribeInstancesInput{
		Filters: []types.Filter{
			{Name: aws.String("tag:" + key), Values: []string{value}},
			{Name: aws.String("instance-state-name"), Values: []string{string(types.InstanceStateNameRunning)}},
		},
		MaxResults: aws.Int32(pageSize),
	}
	var ips []string
	pages := ec2.NewDescribeInstancesPaginator(api, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ec2 tag discovery: DescribeInstances tag:%s=%s: %w", key, value, err)
		}
		for _, r := range out.Reservations {
			for _, inst := range r.Instances {
				if ip := aws.ToString(inst.PrivateIpAddress); ip != "" {
					ips = append(ips, ip)
				}
			}
		}
	}
	// Sort numerically rather than as strings (10.0.0.10 after 10.0.0.9).
	slices.SortFunc(ips, func(a, b string) int {
		pa, ea := netip.ParseAddr(a)
		pb, eb := netip.ParseAddr(b)
		if ea != nil || eb != nil {
			return strings.Compare(a, b)
		}
		return pa.Compare(pb)
	})
	return slices.Compact(ips), nil
}

// NewEC2Client builds an EC2 client from the default AWS configuration
// chain (environment, shared config, then the instance role through IMDS).
// When no region is configured, the instance's own region is read from
// IMDS. endpoint, when not empty, overrides the EC2 endpoint (tests, or
// VPC endpoints); it must be an absolute http(s) URL.
func NewEC2Client(ctx context.Context, endpoint string) (*ec2.Client, error) {
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("ec2 endpoint %q: want an absolute http(s) URL", endpoint)
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithEC2IMDSRegion())
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region configured (set AWS_REGION, or run on EC2 where the region comes from instance metadata)")
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}
