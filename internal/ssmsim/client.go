package ssmsim

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

// Static credentials of the administrator client. The emulator checks no
// signature; it takes the access key ID to find the principal.
const (
	AdminAccessKeyID     = "AKIASSMSIMADMIN00001"
	AdminSecretAccessKey = "ssmsim-admin-secret"
)

// Client returns a real aws-sdk-go-v2 SSM client for a server made by
// Start, signing with accessKeyID (AdminAccessKeyID unless a test has set
// a principal for another key), with the SDK's standard retryer. optFns
// adjust ssm.Options, e.g. to disable retries.
func (s *Server) Client(accessKeyID string, optFns ...func(*ssm.Options)) *ssm.Client {
	cfg := aws.Config{
		Region:       s.cfg.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, AdminSecretAccessKey, ""),
		BaseEndpoint: aws.String(s.URL()),
		// The SDK closes request bodies early; see ec2sim.HTTPClient.
		HTTPClient: ec2sim.HTTPClient(),
	}
	return ssm.NewFromConfig(cfg, optFns...)
}
