package ec2sim

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Static credentials the helper clients sign with. The emulator accepts any signature.
const (
	TestAccessKeyID     = "AKIAEC2SIMTEST000001"
	TestSecretAccessKey = "ec2sim-test-secret"
)

// HTTPClient returns the HTTP client the helper clients use. It hands net/http a private copy
// of each request body. Reason: smithy-go closes the request body as soon as response headers
// arrive, and when net/http's writeLoop has not quite finished with the body yet (loopback is
// fast, -race makes it likelier) the transport closes the connection under the response
// reader: "failed to decode response body ... use of closed network connection"
// (aws/aws-sdk-go-v2#2737; the SDK's standard retryer retries it since #2949, but tests with
// retries disabled would flake). Copying the small Query-API body removes the race.
func HTTPClient() aws.HTTPClient {
	return bodyCopyingClient{c: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
}

type bodyCopyingClient struct{ c *http.Client }

func (b bodyCopyingClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		raw, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(raw))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
		req.ContentLength = int64(len(raw))
	}
	return b.c.Do(req)
}

// AWSConfig returns an aws.Config for the emulator: its region, static test credentials and
// the SDK's standard retryer. optFns can adjust it (for example, aws.NopRetryer).
func (s *Server) AWSConfig(optFns ...func(*aws.Config)) aws.Config {
	cfg := aws.Config{
		Region:       s.cfg.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(TestAccessKeyID, TestSecretAccessKey, ""),
		BaseEndpoint: aws.String(s.URL()),
		HTTPClient:   HTTPClient(),
	}
	for _, fn := range optFns {
		fn(&cfg)
	}
	return cfg
}

// EC2Client returns a real aws-sdk-go-v2 EC2 client pointed at the emulator, with the SDK's
// standard retryer (so throttling is retried as against AWS). optFns adjust ec2.Options, for
// example to disable retries: func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }.
func (s *Server) EC2Client(ctx context.Context, optFns ...func(*ec2.Options)) *ec2.Client {
	_ = ctx // kept for symmetry with config.LoadDefaultConfig-based constructors
	return ec2.NewFromConfig(s.AWSConfig(), optFns...)
}

// STSClient returns a real STS client pointed at the emulator's STS endpoint.
func (s *Server) STSClient(ctx context.Context, optFns ...func(*sts.Options)) *sts.Client {
	_ = ctx
	return sts.NewFromConfig(s.AWSConfig(), optFns...)
}
