package localcloud

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
)

// policyFor is an instance role policy reading the parameters under path (and finding
// members by tag), as modules/cluster's outputs grant.
func policyFor(path string) string {
	return `{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter` + path + `/*"},
  {"Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
   "Condition":{"StringLike":{"kms:EncryptionContext:PARAMETER_ARN":"arn:aws:ssm:*:*:parameter` + path + `/*"}}},
  {"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`
}

// TestSecretsFromLocalParameterStore: a node's user data names its parameters and holds no
// secret; the node reads them from the local cloud's Parameter Store with its instance role's
// credentials (from its own IMDS), under the role's policy. With a policy for another path
// the node fails, saying which parameter it may not read, and systemd keeps restarting it;
// once the policy is changed (through the control API) it comes up by itself.
func TestSecretsFromLocalParameterStore(t *testing.T) {
	c := newTestCloud(t, func(cfg *Config) {
		cfg.RolePolicies = map[string]string{"wsdirect-node": policyFor("/someone-else")}
	})
	k := newTestKeys(t)
	ud := renderUserData(t, c, k, testCA(t), userdata.RoleNode, "lc-iam", nil)
	id := launch(t, ec2Client(c), 1, "subnet-00000001", ud, "lc-iam", "node")[0]

	for _, in := range c.Sim().Instances() {
		raw, _ := base64.StdEncoding.DecodeString(in.UserData)
		for _, secret := range []string{k.gossip, k.priv, k.pub, "PRIVATE KEY"} {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("%s: user data holds a secret", in.ID)
			}
		}
	}

	// The node reads -auth-keys first.
	const denied = "-auth-keys: SSM parameter /lc-iam/auth-public-keys: access denied"
	probe.Until(t, 60*time.Second, "the node to be refused its gossip key", func() error {
		st, _ := statusOf(c, id)
		for _, u := range st.Units {
			if u.ExitStatus != 0 && containsLine(u.Log, denied) {
				return nil
			}
		}
		return fmt.Errorf("units %+v", st.Units)
	})
	roleCalls := 0
	for _, call := range c.SSM().Calls() {
		if strings.HasPrefix(call.AccessKeyID, "ASIA") {
			roleCalls++
			if call.ErrorCode != "AccessDeniedException" {
				t.Errorf("a call of the denied role answered %q: %+v", call.ErrorCode, call)
			}
		}
	}
	if roleCalls == 0 {
		t.Fatal("no Parameter Store call with the instance role's credentials")
	}

	req, _ := http.NewRequest(http.MethodPut, c.URL()+"/localcloud/v1/roles/wsdirect-node/policy", strings.NewReader(policyFor("/lc-iam")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT role policy: %d", resp.StatusCode)
	}
	probe.Until(t, 60*time.Second, "the node to come up once allowed", func() error { return serving(c, id, "wsdirect-node.service") })
	st, _ := statusOf(c, id)
	if st.Units[0].Restarts == 0 {
		t.Error("the node came up without a restart: it never was refused")
	}

	// A malformed policy is refused and changes nothing.
	req, _ = http.NewRequest(http.MethodPut, c.URL()+"/localcloud/v1/roles/wsdirect-node/policy", strings.NewReader(`{"Version":"x"}`))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed policy: %d", resp.StatusCode)
	}
}

func TestRolePoliciesValidated(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WorkDir = t.TempDir()
	cfg.RolePolicies = map[string]string{"wsdirect-node": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"*","Resource":"*"}]}`}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "Config.RolePolicies[wsdirect-node]") {
		t.Errorf("New = %v, want an error naming the policy", err)
	}
}
