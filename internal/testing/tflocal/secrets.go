package tflocal

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/localcloud"
)

// ClusterSecrets are the values modules/cluster reads from Parameter Store, by the parameter
// name under its parameter_path: gossip-key, auth-public-keys, signing-key, users and (with
// admin_api) admin-token.
type ClusterSecrets map[string]string

// PutClusterSecrets stores the secrets under path in the local cloud's Parameter Store, as an
// operator does with `aws ssm put-parameter` before applying: SecureStrings, except the public
// keys, which are not secret.
func (c *Cloud) PutClusterSecrets(ctx context.Context, path string, s ClusterSecrets) error {
	cl := ssm.NewFromConfig(aws.Config{
		Region:       c.Info.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(localcloud.AccessKeyID, localcloud.SecretAccessKey, ""),
		BaseEndpoint: aws.String(c.Info.URL),
	})
	for name, v := range s {
		typ := ssmtypes.ParameterTypeSecureString
		if name == "auth-public-keys" {
			typ = ssmtypes.ParameterTypeString
		}
		// Past 4 KB (a users file of more than about 60 users) only the Advanced tier holds it,
		// as an operator would find.
		tier := ssmtypes.ParameterTierStandard
		if len(v) > 4096 {
			tier = ssmtypes.ParameterTierAdvanced
		}
		if _, err := cl.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(path + "/" + name), Value: aws.String(v), Type: typ, Tier: tier, Overwrite: aws.Bool(true),
		}); err != nil {
			return fmt.Errorf("put %s/%s: %w", path, name, err)
		}
	}
	return nil
}

// DenyAll is an instance role policy that allows nothing: what a role has before its policy
// is attached.
const DenyAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`

// SetRolePolicy sets an instance profile's role policy in the local cloud's Parameter Store
// (the control API's PUT /localcloud/v1/roles/{profile}/policy).
func (c *Cloud) SetRolePolicy(ctx context.Context, profile, doc string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.Info.URL+"/localcloud/v1/roles/"+profile+"/policy", strings.NewReader(doc))
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("role policy of %s: %s: %s", profile, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
