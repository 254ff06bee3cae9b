package tflocal

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// ClusterModule is a root module that applies modules/cluster from this tree on a local
// cloud, with TLS as on EC2 (every instance gets an IP certificate from the run's ACME CA):
// one auth host, node_count nodes, fresh secrets in the local cloud's Parameter Store (never
// in the configuration or the state), Users users in auth's users file. The demo and the
// rebalance run apply it.
type ClusterModule struct {
	// Dir holds the configuration and its state.
	Dir string
	// Users are the users file's users, each with an address of its own; AdminToken opens
	// GET /v1/nodes.
	Users      []User
	AdminToken string
	// AuthURL is the auth host's public URL (the module's auth_url output), set by Apply.
	AuthURL string
	// CA is the ACME CA the instances get their certificates from; clients trust CA.Roots.
	CA *CA
	// TF runs terraform on Dir.
	TF *tfexec.Terraform

	cloud    *Cloud
	policies bool
}

// ClusterUsers says who is in auth's users file.
type ClusterUsers struct {
	// Count users. Many clients must not share one user: auth holds each user to 10 tokens
	// not yet redeemed and each node to 100 of its connections (docs/design.md section 6),
	// so clients arriving at r a second need about r/8 users.
	Count int
	// BcryptCost of their hashes; bcrypt.DefaultCost (10) is what hash-password writes.
	BcryptCost int
	// From holds the users' addresses, one each (auth holds each address to a few password
	// checks at once): a loopback range apart from the cloud's, with room for Count.
	From netip.Prefix
}

// DefaultClientCIDR is where ClusterUsers' addresses come from by default: loopback, apart
// from the local cloud's ranges.
var DefaultClientCIDR = netip.MustParsePrefix("127.42.0.0/16")

// NewClusterModule writes the configuration into dir, puts fresh secrets in the local cloud's
// Parameter Store, leaves the instance roles with no policy (as just created; Apply attaches
// the module's) and runs terraform init; terraform's output goes to log (may be nil). ca is
// the ACME CA the instances use.
func NewClusterModule(ctx context.Context, cloud *Cloud, ca *CA, terraform, repoDir, dir string, users ClusterUsers, log io.Writer) (*ClusterModule, error) {
	if users.Count < 1 || users.BcryptCost < bcrypt.MinCost || users.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("tflocal: ClusterUsers needs Count >= 1 and a bcrypt cost, got %+v", users)
	}
	if !users.From.Addr().IsLoopback() || users.From.Bits() > 30 || users.Count > 1<<(32-users.From.Bits())-2 {
		return nil, fmt.Errorf("tflocal: ClusterUsers.From %v must be a loopback range with an address per user (%d)", users.From, users.Count)
	}
	m := &ClusterModule{Dir: dir, cloud: cloud, CA: ca}
	if err := m.writeConfig(ctx, repoDir, users); err != nil {
		return nil, err
	}
	for _, profile := range []string{"wsdirect-node", "wsdirect-auth"} {
		if err := cloud.SetRolePolicy(ctx, profile, DenyAll); err != nil {
			return nil, err
		}
	}
	tf, err := cloud.Terraform(terraform, dir, log)
	if err != nil {
		return nil, err
	}
	m.TF = tf
	if err := tf.Init(ctx); err != nil {
		return nil, fmt.Errorf("terraform init: %w", err)
	}
	return m, nil
}

// Apply runs terraform apply with node_count = nodes and reads the auth URL. The first time
// it attaches the module's role policies (the plan's outputs) before the instances are
// created, as an aws_iam_role_policy beside the module would: modules/cluster waits for each
// instance to be ready, and a service is ready only once it has read its secrets with exactly
// these grants.
func (m *ClusterModule) Apply(ctx context.Context, nodes int) error {
	count := tfexec.Var("node_count=" + strconv.Itoa(nodes))
	if !m.policies {
		planFile := filepath.Join(m.Dir, "first.tfplan")
		if _, err := m.TF.Plan(ctx, count, tfexec.Out(planFile)); err != nil {
			return fmt.Errorf("terraform plan: %w", err)
		}
		plan, err := m.TF.ShowPlanFile(ctx, planFile)
		if err != nil {
			return fmt.Errorf("terraform show: %w", err)
		}
		for profile, output := range map[string]string{"wsdirect-node": "node_iam_policy_json", "wsdirect-auth": "auth_iam_policy_json"} {
			out, ok := plan.PlannedValues.Outputs[output]
			doc, isString := out.Value.(string)
			if !ok || !isString {
				return fmt.Errorf("output %s is not known at plan time", output)
			}
			if err := m.cloud.SetRolePolicy(ctx, profile, doc); err != nil {
				return err
			}
		}
		m.policies = true
		if err := m.TF.Apply(ctx, tfexec.DirOrPlan(planFile)); err != nil {
			return fmt.Errorf("terraform apply: %w", err)
		}
	} else if err := m.TF.Apply(ctx, count); err != nil {
		return fmt.Errorf("terraform apply: %w", err)
	}
	outs, err := m.TF.Output(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(outs["auth_url"].Value, &m.AuthURL); err != nil {
		return fmt.Errorf("output auth_url: %w", err)
	}
	return nil
}

// SetRelease makes the next Apply deploy r: a new release replaces every instance, rolling
// (modules/cluster creates each replacement and waits for it to serve before destroying the
// old one).
func (m *ClusterModule) SetRelease(r Release) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(m.Dir, "release.auto.tfvars.json"), raw, 0o644)
}

// SetNodeDrain makes the next Apply launch nodes that drain rate clients a second within
// deadline (whole seconds); 0 keeps the binary's default of either.
func (m *ClusterModule) SetNodeDrain(rate int, deadline time.Duration) error {
	v := map[string]any{}
	if rate > 0 {
		v["drain_rate"] = rate
	}
	if deadline > 0 {
		v["drain_deadline"] = deadline.String()
	}
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(m.Dir, "drain.auto.tfvars.json"), raw, 0o644)
}

// Destroy runs terraform destroy.
func (m *ClusterModule) Destroy(ctx context.Context, nodes int) error {
	if err := m.TF.Destroy(ctx, tfexec.Var("node_count="+strconv.Itoa(nodes))); err != nil {
		return fmt.Errorf("terraform destroy: %w", err)
	}
	return nil
}

// clusterParameterPath is where the module's secrets live in the Parameter Store.
const clusterParameterPath = "/wsdirect/demo"

// writeConfig writes the root module: modules/cluster from the repository and the provider
// with no settings (the AWS_* environment points it at the local cloud); fresh secrets go to
// the local cloud's Parameter Store, so neither the configuration nor the state holds them.
func (m *ClusterModule) writeConfig(ctx context.Context, repoDir string, users ClusterUsers) error {
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return err
	}
	modPath, err := filepath.Rel(m.Dir, filepath.Join(repoDir, "modules", "cluster"))
	if err != nil {
		return err
	}
	pub, priv, err := token.GenerateKey()
	if err != nil {
		return err
	}
	pubPEM, err := token.EncodePublicKey(pub)
	if err != nil {
		return err
	}
	privPEM, err := token.EncodePrivateKey(priv)
	if err != nil {
		return err
	}
	var g, adm [32]byte
	_, _ = rand.Read(g[:])
	_, _ = rand.Read(adm[:])
	var usersFile string
	if m.Users, usersFile, err = makeUsers(users.Count, users.From, users.BcryptCost); err != nil {
		return err
	}
	m.AdminToken = hex.EncodeToString(adm[:16])

	main := fmt.Sprintf(`terraform {
  required_providers {
    wsdirect = {
      source = "wsdirect/wsdirect"
    }
  }
}

# No settings: AWS_REGION and AWS_ENDPOINT_URL_EC2 (from wsdirect-localcloud env) point the
# provider at the local cloud, as they would at any EC2-compatible endpoint.
provider "wsdirect" {}

variable "node_count" {
  type = number
}
variable "acme_ca_root" {
  type = string
}
# The release (release.auto.tfvars.json): SetRelease changes it, for a rolling upgrade.
variable "release_url" {
  type = string
}
variable "release_version" {
  type = string
}
variable "release_sha256" {
  type = map(string)
}
# The nodes' drain (drain.auto.tfvars.json, SetNodeDrain); null: the binary's defaults.
variable "drain_rate" {
  type    = number
  default = null
}
variable "drain_deadline" {
  type    = string
  default = null
}

module "cluster" {
  source = %q

  cluster_name         = "demo"
  subnet_ids           = ["subnet-00000001", "subnet-00000002"]
  security_group_ids   = ["sg-00000002"]
  ami                  = "ami-0123456789abcdef0"
  node_instance_type   = "c6i.large"
  auth_instance_type   = "t3.small"
  node_count           = var.node_count
  max_conns_per_node   = 10000
  parameter_path       = %q
  admin_api            = true

  iam_instance_profile      = "wsdirect-node"
  auth_iam_instance_profile = "wsdirect-auth"

  release_url     = var.release_url
  release_version = var.release_version
  release_sha256  = var.release_sha256
  drain_rate      = var.drain_rate
  drain_deadline  = var.drain_deadline

  # TLS as on EC2 (tls_mode "acme", the default): every node and the auth host obtain an
  # IP certificate for their public address, here from the run's own ACME CA.
  acme_directory = %q
  acme_ca_root   = var.acme_ca_root
}

output "auth_url" {
  value = module.cluster.auth_url
}

output "nodes" {
  value = module.cluster.nodes
}

output "node_iam_policy_json" {
  value = module.cluster.node_iam_policy_json
}

output "auth_iam_policy_json" {
  value = module.cluster.auth_iam_policy_json
}
`, filepath.ToSlash(modPath), clusterParameterPath, m.CA.Directory)
	if err := os.WriteFile(filepath.Join(m.Dir, "main.tf"), []byte(main), 0o644); err != nil {
		return err
	}
	if err := m.SetRelease(m.cloud.Release()); err != nil {
		return err
	}
	// The ACME CA's root is public: a variable, not a parameter.
	raw, err := json.MarshalIndent(map[string]string{"acme_ca_root": m.CA.ListenerRoot}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "acme.auto.tfvars.json"), raw, 0o644); err != nil {
		return err
	}
	return m.cloud.PutClusterSecrets(ctx, clusterParameterPath, ClusterSecrets{
		"gossip-key":       base64.StdEncoding.EncodeToString(g[:]),
		"signing-key":      string(privPEM),
		"auth-public-keys": string(pubPEM),
		"users":            usersFile,
		"admin-token":      m.AdminToken,
	})
}

// WaitServing waits until every instance booted with its unit active, and auth lists nodes
// alive members.
func (m *ClusterModule) WaitServing(ctx context.Context, nodes int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = m.serving(ctx, nodes); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving within %v: %w", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (m *ClusterModule) serving(ctx context.Context, nodes int) error {
	sts, err := m.cloud.Status(ctx)
	if err != nil {
		return err
	}
	running := 0
	for _, s := range sts {
		if s.State != "running" {
			continue
		}
		running++
		if s.Boot != "done" {
			return fmt.Errorf("%s: boot %q %s", s.ID, s.Boot, s.BootError)
		}
		for _, u := range s.Units {
			if u.ActiveState != "active" {
				return fmt.Errorf("%s: %s %s (exit %d): %s", s.ID, u.Name, u.ActiveState, u.ExitStatus, strings.Join(u.Log, "\n"))
			}
		}
	}
	if running != nodes+1 {
		return fmt.Errorf("%d instances running, want %d", running, nodes+1)
	}
	ns, err := m.AuthNodes(ctx)
	if err != nil {
		return err
	}
	ready := 0
	for _, n := range ns {
		if n.Alive && n.Ready && !n.Draining {
			ready++
		}
	}
	if ready != nodes {
		return fmt.Errorf("auth sees %d live nodes ready (certificate obtained, tokens accepted), want %d", ready, nodes)
	}
	return nil
}

// AuthNodes is auth's GET /v1/nodes, with the admin token.
func (m *ClusterModule) AuthNodes(ctx context.Context) ([]wire.NodeStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.AuthURL+wire.NodesPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+m.AdminToken)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: m.CA.Roots}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", wire.NodesPath, resp.Status)
	}
	var ns []wire.NodeStatus
	return ns, json.NewDecoder(resp.Body).Decode(&ns)
}
