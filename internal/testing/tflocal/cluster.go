package tflocal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// ClusterModule is a root module that applies modules/cluster from this tree on a local
// cloud: one auth host, node_count nodes, fresh secrets, Users users in auth's users file.
// The demo and the rebalance run apply it.
type ClusterModule struct {
	// Dir holds the configuration and its state.
	Dir string
	// Users are the users file's users; AdminToken opens GET /v1/nodes.
	Users      []client.Credentials
	AdminToken string
	// AuthURL is the auth host's public URL (the module's auth_url output), set by Apply.
	AuthURL string
	// TF runs terraform on Dir.
	TF *tfexec.Terraform

	cloud *Cloud
}

// ClusterUsers says who is in auth's users file.
type ClusterUsers struct {
	// Count users, named user-1, user-2, ... Many clients must not share one user: auth
	// holds each user to 10 tokens not yet redeemed and each node to 100 of its connections
	// (docs/design.md section 6), so clients arriving at r a second need about r/8 users.
	Count int
	// BcryptCost of their hashes; bcrypt.DefaultCost (10) is what hash-password writes.
	BcryptCost int
}

// NewClusterModule writes the configuration into dir and runs terraform init; terraform's
// output goes to log (may be nil). The users file must fit in the auth host's user data
// (16 KiB): about 150 users at most.
func NewClusterModule(ctx context.Context, cloud *Cloud, terraform, repoDir, dir string, users ClusterUsers, log io.Writer) (*ClusterModule, error) {
	if users.Count < 1 || users.BcryptCost < bcrypt.MinCost || users.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("tflocal: ClusterUsers needs Count >= 1 and a bcrypt cost, got %+v", users)
	}
	m := &ClusterModule{Dir: dir, cloud: cloud}
	if err := m.writeConfig(repoDir, users); err != nil {
		return nil, err
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

// Apply runs terraform apply with node_count = nodes and reads the auth URL.
func (m *ClusterModule) Apply(ctx context.Context, nodes int) error {
	if err := m.TF.Apply(ctx, tfexec.Var("node_count="+strconv.Itoa(nodes))); err != nil {
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

// Destroy runs terraform destroy.
func (m *ClusterModule) Destroy(ctx context.Context, nodes int) error {
	if err := m.TF.Destroy(ctx, tfexec.Var("node_count="+strconv.Itoa(nodes))); err != nil {
		return fmt.Errorf("terraform destroy: %w", err)
	}
	return nil
}

// writeConfig writes the root module: modules/cluster from the repository, the provider with
// no settings (the AWS_* environment points it at the local cloud), and fresh secrets in a
// tfvars file only the owner can read.
func (m *ClusterModule) writeConfig(repoDir string, users ClusterUsers) error {
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
	var usersFile strings.Builder
	for i := range users.Count {
		var pw [12]byte
		_, _ = rand.Read(pw[:])
		password := hex.EncodeToString(pw[:])
		hash, err := bcrypt.GenerateFromPassword([]byte(password), users.BcryptCost)
		if err != nil {
			return err
		}
		name := "user-" + strconv.Itoa(i+1)
		m.Users = append(m.Users, client.Credentials{Username: name, Password: password})
		usersFile.WriteString(name + ":" + string(hash) + "\n")
	}
	m.AdminToken = hex.EncodeToString(adm[:16])
	info := m.cloud.Info
	sha, _ := json.Marshal(info.ReleaseSHA256)

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
variable "gossip_key" {
  type      = string
  sensitive = true
}
variable "auth_signing_key" {
  type      = string
  sensitive = true
}
variable "auth_public_keys" {
  type = string
}
variable "auth_users" {
  type      = string
  sensitive = true
}
variable "admin_token" {
  type      = string
  sensitive = true
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
  iam_instance_profile = "wsdirect-node"

  gossip_key       = var.gossip_key
  auth_public_keys = var.auth_public_keys
  auth_signing_key = var.auth_signing_key
  auth_users       = var.auth_users
  admin_token      = var.admin_token

  release_url     = %q
  release_version = %q
  release_sha256  = %s
}

output "auth_url" {
  value = module.cluster.auth_url
}

output "nodes" {
  value = module.cluster.nodes
}
`, filepath.ToSlash(modPath), info.ReleaseURL, info.ReleaseVersion, strings.ReplaceAll(string(sha), `":"`, `" = "`))
	if err := os.WriteFile(filepath.Join(m.Dir, "main.tf"), []byte(main), 0o644); err != nil {
		return err
	}
	vars := map[string]string{
		"gossip_key":       base64.StdEncoding.EncodeToString(g[:]),
		"auth_signing_key": string(privPEM),
		"auth_public_keys": string(pubPEM),
		"auth_users":       usersFile.String(),
		"admin_token":      m.AdminToken,
	}
	raw, err := json.MarshalIndent(vars, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(m.Dir, "secrets.auto.tfvars.json"), raw, 0o600)
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
	alive := 0
	for _, n := range ns {
		if n.Alive && !n.Draining {
			alive++
		}
	}
	if alive != nodes {
		return fmt.Errorf("auth sees %d live nodes, want %d", alive, nodes)
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
	resp, err := httpClient.Do(req)
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
