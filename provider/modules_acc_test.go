package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"go.yaml.in/yaml/v3"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ssmsim"
)

// TestAccModules plans and applies modules/cluster and modules/haproxy, as
// a user's configuration would, with the real terraform binary against
// ec2sim. The HAProxy host balances over the cluster's nodes. It checks the
// outputs, what ec2sim holds (instances, tags, user data, secondary IPs),
// that the rendered haproxy.cfg passes haproxy -c with the host's real
// source IPs, that scaling the cluster adds a node without touching the
// others, and that destroy leaves nothing behind.
func TestAccModules(t *testing.T) {
	env := newTestAccEnvSim(t, ec2sim.DefaultConfig())
	// The modules require wsdirect/wsdirect; serve the in-process provider
	// under that address rather than the default hashicorp/ namespace.
	t.Setenv("TF_ACC_PROVIDER_NAMESPACE", "wsdirect")

	modulesDir, err := filepath.Abs(filepath.Join("..", "modules"))
	if err != nil {
		t.Fatal(err)
	}
	ready := newReadyServer(t, 0)
	var configText func(nodeCount int) string
	// terraform-plugin-testing runs init before it writes a Config string,
	// which would leave the modules uninstalled; a ConfigDirectory is in
	// place for init.
	configDir := func(nodeCount int) config.TestStepConfigFunc {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(configText(nodeCount)), 0o644); err != nil {
			t.Fatal(err)
		}
		return config.StaticDirectory(dir)
	}
	emptyDir := func() config.TestStepConfigFunc {
		dir := t.TempDir()
		body := env.config(`
terraform {
  required_providers {
    wsdirect = {
      source = "wsdirect/wsdirect"
    }
  }
}
`)
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return config.StaticDirectory(dir)
	}
	configText = func(nodeCount int) string {
		return env.config(`
terraform {
  required_providers {
    wsdirect = {
      source = "wsdirect/wsdirect"
    }
  }
}

module "cluster" {
  source = %[1]q

  cluster_name       = "acc"
  subnet_ids         = [%[2]q, %[3]q]
  security_group_ids = [%[4]q]
  ami                = %[5]q
  node_instance_type = "c5.large"
  auth_instance_type = "t3.small"
  node_count         = %[6]d
  node_public_ip     = "auto"
  max_conns_per_node = 1000
  parameter_path     = "/wsdirect/acc"
  admin_api          = true
  release_url        = "https://releases.example.com/v1.0.0/"
  release_version    = "1.0.0"
  tags               = { team = "acc" }
  auth_tls_names     = ["auth.acc.example.com"]
  acme_email         = "ops@acc.example.com"
  # No instance serves on ec2sim: every create waits for this test's
  # readiness server instead of the instances' /readyz.
  ready_url = "%[8]s/readyz?ip={private_ip}"

  iam_instance_profile      = "wsdirect-node"
  auth_iam_instance_profile = "wsdirect-auth"
}

module "haproxy" {
  source = %[7]q

  subnet_id          = %[2]q
  security_group_ids = [%[4]q]
  ami                = %[5]q
  instance_type      = "c5.large"
  source_ip_count    = 3
  backends           = [for n in module.cluster.nodes : { name = n.id, address = n.private_ip }]
}

output "auth_url" {
  value = module.cluster.auth_url
}
output "auth_public_ips" {
  value = module.cluster.auth_public_ips
}
output "nodes" {
  value = module.cluster.nodes
}
output "join_tag" {
  value = module.cluster.join_tag
}
output "haproxy_public_ip" {
  value = module.haproxy.public_ip
}
output "haproxy_source_ips" {
  value = module.haproxy.source_ips
}
output "haproxy_server_names" {
  value = module.haproxy.server_names
}
output "haproxy_config" {
  value = module.haproxy.haproxy_config
}
output "parameters" {
  value = module.cluster.parameters
}
output "node_iam_policy_json" {
  value = module.cluster.node_iam_policy_json
}
output "auth_iam_policy_json" {
  value = module.cluster.auth_iam_policy_json
}
`, filepath.Join(modulesDir, "cluster"), env.Subnet, env.Subnet2, env.SG, env.AMI, nodeCount,
			filepath.Join(modulesDir, "haproxy"), ready.URL)
	}

	ipv4 := knownvalue.StringRegexp(regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+$`))
	node := knownvalue.ObjectExact(map[string]knownvalue.Check{
		"id":         knownvalue.StringRegexp(regexp.MustCompile(`^i-[0-9a-f]+$`)),
		"private_ip": ipv4,
		"public_ip":  ipv4,
		"az":         knownvalue.StringRegexp(regexp.MustCompile(`^[a-z]{2}-[a-z]+-\d[a-z]$`)),
	})

	resource.Test(t, resource.TestCase{
		// No Check/CheckDestroy: terraform-plugin-testing's legacy state
		// shim refuses child modules, so the checks read the JSON state
		// (statecheck) and the last step removes the modules.
		Steps: []resource.TestStep{
			{
				// With ConfigDirectory the providers go on each step.
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				ConfigDirectory:          configDir(3),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("module.cluster.wsdirect_node.node[2]", plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction("module.cluster.wsdirect_node.auth[0]", plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction("module.haproxy.wsdirect_node.haproxy", plancheck.ResourceActionCreate),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("auth_url", knownvalue.StringExact("https://auth.acc.example.com")),
					statecheck.ExpectKnownOutputValue("auth_public_ips", knownvalue.ListExact([]knownvalue.Check{ipv4})),
					statecheck.ExpectKnownOutputValue("nodes", knownvalue.ListExact([]knownvalue.Check{node, node, node})),
					statecheck.ExpectKnownOutputValue("join_tag", knownvalue.StringExact("wsdirect:cluster=acc")),
					statecheck.ExpectKnownOutputValue("haproxy_public_ip", ipv4),
					statecheck.ExpectKnownOutputValue("haproxy_source_ips", knownvalue.ListExact([]knownvalue.Check{ipv4, ipv4, ipv4})),
					statecheck.ExpectKnownOutputValue("haproxy_server_names", knownvalue.ListSizeExact(9)),
					checkClusterInSim(env, 3),
					checkHAProxyOutputs(t),
					checkNoSecretInState(),
					checkModulePolicies(t),
					moduleStateCheck(func(*tfjson.State) error {
						// Every node and the auth host were waited for, by
						// their own address.
						ready.mu.Lock()
						defer ready.mu.Unlock()
						if len(ready.checks) != 4 {
							return fmt.Errorf("readiness checked for %d addresses (%v), want the 4 cluster instances'", len(ready.checks), ready.checks)
						}
						return nil
					}),
				},
			},
			{
				// Scaling out adds one node and leaves the others alone.
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				ConfigDirectory:          configDir(4),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("module.cluster.wsdirect_node.node[3]", plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction("module.cluster.wsdirect_node.node[0]", plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction("module.cluster.wsdirect_node.node[2]", plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction("module.cluster.wsdirect_node.auth[0]", plancheck.ResourceActionNoop),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("nodes", knownvalue.ListSizeExact(4)),
					statecheck.ExpectKnownOutputValue("haproxy_server_names", knownvalue.ListSizeExact(12)),
					checkClusterInSim(env, 4),
					checkHAProxyOutputs(t),
				},
			},
			{
				// Removing the modules destroys everything they made.
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				ConfigDirectory:          emptyDir(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("module.cluster.wsdirect_node.node[3]", plancheck.ResourceActionDestroy),
						plancheck.ExpectResourceAction("module.haproxy.wsdirect_node.haproxy", plancheck.ResourceActionDestroy),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					moduleStateCheck(func(*tfjson.State) error {
						for _, in := range env.Sim.Instances() {
							if in.State != "terminated" {
								return fmt.Errorf("instance %s (%s) is still %s", in.ID, in.Tags["Name"], in.State)
							}
						}
						if a := env.Sim.Addresses(); len(a) > 0 {
							return fmt.Errorf("%d Elastic IP(s) left, first %s", len(a), a[0].PublicIP)
						}
						return nil
					}),
				},
			},
		},
	})
}

// checkClusterInSim looks at ec2sim directly: the right instances are
// running in both subnets with the join tag, nodes carry node user data
// with the join flag, and the auth host has an Elastic IP.
func checkClusterInSim(env *testAccEnv, nodes int) statecheck.StateCheck {
	return moduleStateCheck(func(*tfjson.State) error {
		roles := map[string]int{}
		subnets := map[string]bool{}
		for _, in := range env.Sim.Instances() {
			if in.State == "terminated" {
				continue
			}
			role := in.Tags["wsdirect:role"]
			roles[role]++
			ud, err := base64.StdEncoding.DecodeString(in.UserData)
			if err != nil {
				return fmt.Errorf("%s: user data is not base64: %v", in.ID, err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(ud, &doc); err != nil || !strings.HasPrefix(string(ud), "#cloud-config\n") {
				return fmt.Errorf("%s (%s): user data is not #cloud-config YAML: %v", in.ID, role, err)
			}
			switch role {
			case "node", "auth":
				if in.Tags["wsdirect:cluster"] != "acc" || in.Tags["team"] != "acc" {
					return fmt.Errorf("%s: tags %v lack wsdirect:cluster=acc and team=acc", in.ID, in.Tags)
				}
				subnets[in.SubnetID] = true
				want := "/usr/local/bin/wsdirect-" + role + " "
				if !strings.Contains(string(ud), want) || !strings.Contains(string(ud), "-join-ec2-tag wsdirect:cluster=acc") {
					return fmt.Errorf("%s: user data does not start %s with the join tag", in.ID, want)
				}
				// Secrets by parameter name only, and IMDSv2 with one hop.
				params := map[string][]string{
					"node": {"-gossip-key-file ssm:///wsdirect/acc/gossip-key", "-auth-keys ssm:///wsdirect/acc/auth-public-keys"},
					"auth": {"-gossip-key-file ssm:///wsdirect/acc/gossip-key", "-signing-key ssm:///wsdirect/acc/signing-key",
						"-users ssm:///wsdirect/acc/users", "-admin-token-file ssm:///wsdirect/acc/admin-token"},
				}[role]
				for _, p := range params {
					if !strings.Contains(string(ud), p) {
						return fmt.Errorf("%s (%s): user data lacks %q", in.ID, role, p)
					}
				}
				for _, secret := range []string{"PRIVATE KEY", "PUBLIC KEY", "$2a$", "$2y$"} {
					if strings.Contains(string(ud), secret) {
						return fmt.Errorf("%s (%s): user data holds %q", in.ID, role, secret)
					}
				}
				if mo := in.MetadataOptions; mo.HTTPTokens != "required" || mo.HTTPPutResponseHopLimit != 1 || mo.HTTPEndpoint != "enabled" {
					return fmt.Errorf("%s (%s): metadata options %+v, want IMDSv2 required, 1 hop", in.ID, role, mo)
				}
				if wantProf := "wsdirect-" + role; in.IamInstanceProfile != wantProf {
					return fmt.Errorf("%s (%s): instance profile %q, want %q", in.ID, role, in.IamInstanceProfile, wantProf)
				}
				if role == "node" && !strings.Contains(string(ud), "/wsdirect-node_1.0.0_linux_amd64.tar.gz") {
					return fmt.Errorf("%s: user data does not download the node release archive", in.ID)
				}
			case "haproxy":
				if len(in.NetworkInterfaces) != 1 || len(in.NetworkInterfaces[0].PrivateIPs) != 4 {
					return fmt.Errorf("%s: HAProxy host should have 1 primary + 3 secondary IPs, has %+v", in.ID, in.NetworkInterfaces)
				}
				if pk, _ := doc["packages"].([]any); len(pk) != 1 || pk[0] != "haproxy" {
					return fmt.Errorf("%s: HAProxy user data installs %v, want [haproxy]", in.ID, doc["packages"])
				}
				if rc := fmt.Sprint(doc["runcmd"]); !strings.Contains(rc, "/usr/local/lib/wsdirect/haproxy-source-ips.sh 3 ") ||
					!strings.Contains(rc, "restart haproxy") {
					return fmt.Errorf("%s: HAProxy runcmd %s does not set up the 3 source IPs and restart haproxy", in.ID, rc)
				}
			default:
				return fmt.Errorf("%s: unexpected instance with role %q", in.ID, role)
			}
		}
		if roles["node"] != nodes || roles["auth"] != 1 || roles["haproxy"] != 1 {
			return fmt.Errorf("running instances by role = %v, want %d node, 1 auth, 1 haproxy", roles, nodes)
		}
		if len(subnets) != 2 {
			return fmt.Errorf("cluster instances are in subnets %v, want both", subnets)
		}
		if n := len(env.Sim.Addresses()); n != 2 {
			return fmt.Errorf("%d Elastic IPs allocated, want 2 (auth host and HAProxy host)", n)
		}
		return nil
	})
}

// checkHAProxyOutputs runs the real haproxy -c on the module's config with
// the host's actual secondary IPs in WSDIRECT_SRC1..3, as its boot script
// would set them, and checks every node appears once per source IP.
func checkHAProxyOutputs(t *testing.T) statecheck.StateCheck {
	return moduleStateCheck(func(s *tfjson.State) error {
		if s == nil || s.Values == nil {
			return fmt.Errorf("no state")
		}
		output := func(name string) any {
			if o := s.Values.Outputs[name]; o != nil {
				return o.Value
			}
			return nil
		}
		cfg, _ := output("haproxy_config").(string)
		srcs, _ := output("haproxy_source_ips").([]any)
		nodes, _ := output("nodes").([]any)
		if cfg == "" || len(srcs) != 3 || len(nodes) == 0 {
			return fmt.Errorf("haproxy outputs missing: %d source IPs, %d nodes", len(srcs), len(nodes))
		}
		var envVars []string
		for i, s := range srcs {
			ip, _ := s.(string)
			if a, err := netip.ParseAddr(ip); err != nil || !netip.MustParsePrefix("10.0.1.0/24").Contains(a) {
				return fmt.Errorf("source IP %q is not in the HAProxy subnet", ip)
			}
			envVars = append(envVars, fmt.Sprintf("WSDIRECT_SRC%d=%s", i+1, ip))
		}
		for _, n := range nodes {
			m, _ := n.(map[string]any)
			for j := 1; j <= 3; j++ {
				want := fmt.Sprintf("server %s_src%d %s:8080 source \"${WSDIRECT_SRC%d}\" ", m["id"], j, m["private_ip"], j)
				if !strings.Contains(cfg, want) {
					return fmt.Errorf("config lacks %q:\n%s", want, cfg)
				}
			}
		}
		bin, err := haproxycfg.FindBinary()
		if err != nil {
			if os.Getenv("CI") != "" {
				return fmt.Errorf("CI is set but haproxy is unavailable: %w", err)
			}
			t.Logf("not running haproxy -c: %v", err)
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := haproxycfg.Check(ctx, bin, cfg, envVars...)
		if err != nil {
			return err
		}
		if len(res.Warnings) > 0 {
			return fmt.Errorf("haproxy warned: %v", res.Warnings)
		}
		return nil
	})
}

// moduleStateCheck adapts a function of the JSON state to a StateCheck.
type moduleStateCheck func(*tfjson.State) error

func (f moduleStateCheck) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	resp.Error = f(req.State)
}

// checkNoSecretInState: the state holds no key material or password hash,
// neither in the modules' resources nor in their data sources.
func checkNoSecretInState() statecheck.StateCheck {
	return moduleStateCheck(func(s *tfjson.State) error {
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		for _, secret := range []string{"PRIVATE KEY", "PUBLIC KEY", "$2a$", "$2y$", "gossip.key"} {
			if bytes.Contains(raw, []byte(secret)) {
				return fmt.Errorf("the state holds %q", secret)
			}
		}
		return nil
	})
}

// checkModulePolicies loads the module's two policy documents into the
// Parameter Store emulator as the nodes' and auth hosts' roles, with the
// parameters the module names encrypted under a customer managed key, and
// checks through the real SDK that each role reads exactly what its
// binary needs: nodes cannot read the signing key or the users file.
func checkModulePolicies(t *testing.T) statecheck.StateCheck {
	return moduleStateCheck(func(s *tfjson.State) error {
		out := func(name string) any {
			if o := s.Values.Outputs[name]; o != nil {
				return o.Value
			}
			return nil
		}
		params, _ := out("parameters").(map[string]any)
		if len(params) != 6 {
			return fmt.Errorf("parameters output = %v", out("parameters"))
		}
		sim, err := ssmsim.Start(ssmsim.DefaultConfig())
		if err != nil {
			return err
		}
		defer sim.Close()
		if _, err := sim.CreateKey("alias/wsdirect-acc"); err != nil {
			return err
		}
		admin := sim.Client(ssmsim.AdminAccessKeyID)
		ctx := context.Background()
		for key, name := range params {
			typ := ssmtypes.ParameterTypeSecureString
			if key == "auth_public_keys" {
				typ = ssmtypes.ParameterTypeString
			}
			in := &ssm.PutParameterInput{Name: aws.String(name.(string)), Value: aws.String("value of " + key), Type: typ}
			if typ == ssmtypes.ParameterTypeSecureString {
				in.KeyId = aws.String("alias/wsdirect-acc")
			}
			if _, err := admin.PutParameter(ctx, in); err != nil {
				return err
			}
		}
		for role, readable := range map[string][]string{
			"node": {"gossip_key", "auth_public_keys"},
			"auth": {"gossip_key", "signing_key", "users", "admin_token"},
		} {
			doc, _ := out(role + "_iam_policy_json").(string)
			policy, err := ssmsim.ParsePolicy([]byte(doc))
			if err != nil {
				return fmt.Errorf("%s policy: %w\n%s", role, err, doc)
			}
			if a := strings.Join(policy.Actions(), ","); a != "ec2:describeinstances,kms:decrypt,ssm:getparameter" {
				return fmt.Errorf("%s policy grants %s", role, a)
			}
			keyID := "ASIA" + strings.ToUpper(role) + "ROLE"
			sim.SetPrincipal(keyID, ssmsim.Principal{ARN: "arn:aws:sts::123456789012:assumed-role/wsdirect-" + role + "/i-1", Policy: policy})
			c := sim.Client(keyID, func(o *ssm.Options) { o.Retryer = aws.NopRetryer{} })
			for key, name := range params {
				got, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name.(string)), WithDecryption: aws.Bool(true)})
				want := contains(readable, key)
				var denied *ssmtypes.AccessDeniedException
				switch {
				case want && err != nil:
					return fmt.Errorf("%s role cannot read %s: %v", role, name, err)
				case want && aws.ToString(got.Parameter.Value) != "value of "+key:
					return fmt.Errorf("%s role read %s wrong", role, name)
				case !want && !errors.As(err, &denied):
					return fmt.Errorf("%s role reads %s, which it must not: %v", role, name, err)
				}
			}
		}
		t.Logf("node policy: %s", out("node_iam_policy_json"))
		return nil
	})
}
