package localcloud

import (
	"fmt"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ssmsim"
)

// The local cloud's Parameter Store (internal/ssmsim) is served as "ssm" beside EC2 and STS,
// so instances find it through AWS_ENDPOINT_URL_SSM and the binaries read the secrets their
// user data names (ssm:///path/name) with their instance role's credentials, as on EC2.
// Terraform users and scripts put the parameters in with the local cloud's own credentials
// (Env), e.g. `aws ssm put-parameter`.

// startSSM makes the Parameter Store and serves it as "ssm".
func (c *Cloud) startSSM() error {
	c.rolePolicies = map[string]*ssmsim.Policy{}
	for name, doc := range c.cfg.RolePolicies {
		p, err := ssmsim.ParsePolicy([]byte(doc))
		if err != nil {
			return fmt.Errorf("localcloud: Config.RolePolicies[%s]: %w", name, err)
		}
		c.rolePolicies[name] = p
	}
	sc := ssmsim.DefaultConfig()
	sc.Region, sc.AccountID = c.cfg.Region, c.account
	sc.Authenticate = c.ssmPrincipal
	s, err := ssmsim.New(sc)
	if err != nil {
		return err
	}
	c.ssm = s
	c.services["ssm"] = s
	return nil
}

// SSM is the local cloud's Parameter Store, or nil when Config.Services replaced it.
func (c *Cloud) SSM() *ssmsim.Server { return c.ssm }

// SetRolePolicy sets the IAM policy document (JSON) of an instance profile's role, which the
// Parameter Store enforces from the next request on; an empty doc removes it, and the role may
// then do everything.
func (c *Cloud) SetRolePolicy(profile, doc string) error {
	if profile == "" || strings.ContainsAny(profile, "/ \t") {
		return fmt.Errorf("localcloud: %q is not an instance profile name", profile)
	}
	var p *ssmsim.Policy
	if doc != "" {
		var err error
		if p, err = ssmsim.ParsePolicy([]byte(doc)); err != nil {
			return fmt.Errorf("localcloud: role policy of %s: %w", profile, err)
		}
	}
	c.policyMu.Lock()
	defer c.policyMu.Unlock()
	if p == nil {
		delete(c.rolePolicies, profile)
	} else {
		c.rolePolicies[profile] = p
	}
	c.log.Info("role policy set", "instance_profile", profile, "policy", p != nil)
	return nil
}

// ssmPrincipal names who signed a Parameter Store request: the local cloud's own credentials
// are the account's administrator; an instance role's current credentials are that role's
// session, under its RolePolicies entry; any other key is unknown, as AWS would say.
func (c *Cloud) ssmPrincipal(accessKeyID string) (ssmsim.Principal, bool) {
	if accessKeyID == AccessKeyID {
		return ssmsim.Principal{ARN: "arn:aws:iam::" + c.account + ":user/localcloud"}, true
	}
	c.mu.Lock()
	instances := make([]*instance, 0, len(c.instances))
	for _, in := range c.instances {
		instances = append(instances, in)
	}
	c.mu.Unlock()
	for _, in := range instances {
		if in.imds == nil {
			continue
		}
		profile, ok := in.imds.credsFor(accessKeyID)
		if !ok {
			continue
		}
		c.policyMu.Lock()
		policy := c.rolePolicies[profile]
		c.policyMu.Unlock()
		return ssmsim.Principal{ARN: "arn:aws:sts::" + c.account + ":assumed-role/" + profile + "/" + in.id, Policy: policy}, true
	}
	return ssmsim.Principal{}, false
}
