package tflocal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-exec/tfexec"
	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/localcloud"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// DemoConfig describes the `make demo-terraform` run. Start from DefaultDemoConfig and set
// RepoDir, WorkDir and Terraform.
type DemoConfig struct {
	// RepoDir is the module's root: the binaries are built from it and the configuration uses
	// its modules/cluster. Required.
	RepoDir string
	// WorkDir holds the build, the provider mirror, the local cloud and the Terraform
	// configuration and state. Required; it must not exist or be empty.
	WorkDir string
	// Terraform is the terraform binary. Required.
	Terraform string
	// Version of the provider and of the release. Default "0.0.1" (Terraform's mirrors skip 0.0.0).
	Version string
	// Cloud configures the local cloud; its WorkDir is set to <WorkDir>/localcloud.
	Cloud CloudConfig
	// Nodes is node_count of the first apply, ScaleTo that of the second. Defaults 3 and 4.
	Nodes, ScaleTo int
	// Clients connect after the first apply, ScaleClients more after the second. Defaults
	// 3,000 and 1,000.
	Clients, ScaleClients int
	// Concurrency bounds connections being set up at once. Default 64.
	Concurrency int
	// ReadyTimeout bounds each wait for the cluster to serve. Default 2m.
	ReadyTimeout time.Duration
	// Out receives the narrative. nil = io.Discard.
	Out io.Writer
}

// DefaultDemoConfig returns the defaults described on each DemoConfig field.
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{
		Version: "0.0.1", Cloud: DefaultCloudConfig(), Nodes: 3, ScaleTo: 4, Clients: 3000, ScaleClients: 1000,
		Concurrency: 64, ReadyTimeout: 2 * time.Minute,
	}
}

func (c DemoConfig) validate() error {
	var errs []error
	if c.RepoDir == "" || c.WorkDir == "" || c.Terraform == "" {
		errs = append(errs, errors.New("tflocal: DemoConfig needs RepoDir, WorkDir and Terraform"))
	}
	if c.Nodes < 1 || c.ScaleTo <= c.Nodes {
		errs = append(errs, fmt.Errorf("tflocal: need 1 <= Nodes < ScaleTo, got %d and %d", c.Nodes, c.ScaleTo))
	}
	if c.Clients < 1 || c.ScaleClients < 1 || c.Concurrency < 1 || c.ReadyTimeout <= 0 {
		errs = append(errs, errors.New("tflocal: Clients, ScaleClients, Concurrency and ReadyTimeout must be positive"))
	}
	return errors.Join(errs...)
}

// Step is one step of the demo and how long it took.
type Step struct {
	Name string
	Took time.Duration
}

// NodeRow is one node's share of the clients: what auth assigned and what the node itself
// counts.
type NodeRow struct {
	ID         string
	URL        string
	Assigned   int
	ServerSide int
}

// DemoResult is what the demo measured.
type DemoResult struct {
	Steps          []Step
	Before, After  []NodeRow
	NewNode        string
	NewNodeClients int // of the ScaleClients connected after the scale-out
	Total          time.Duration
}

// Demo runs the Terraform story on the local cloud: build and install the provider; start the
// local cloud and apply modules/cluster with cfg.Nodes nodes and one auth host; connect
// cfg.Clients clients through auth and check each node's own count against auth's
// assignments; apply cfg.ScaleTo nodes and check the new node joins by tag and takes clients;
// destroy, and check that no instance, Elastic IP or process is left. It returns an error
// as soon as a step fails.
func Demo(ctx context.Context, cfg DemoConfig) (*DemoResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(cfg.WorkDir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("tflocal: work directory %s is not empty", cfg.WorkDir)
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	d := &demo{cfg: cfg, out: out, begin: time.Now(), res: &DemoResult{}}
	defer d.cleanup()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"1. build the binaries and the provider; install the provider in a filesystem mirror", d.build},
		{fmt.Sprintf("2. start the local cloud; terraform init + apply (%d nodes, 1 auth host) until it serves", cfg.Nodes), d.apply},
		{fmt.Sprintf("3. %d clients through the auth host", cfg.Clients), d.connect},
		{fmt.Sprintf("4. terraform apply with %d nodes; the new node joins by tag and takes clients", cfg.ScaleTo), d.scale},
		{"5. terraform destroy; nothing left", d.destroy},
	}
	for _, s := range steps {
		d.say("%s", s.name)
		start := time.Now()
		if err := s.run(ctx); err != nil {
			return d.res, fmt.Errorf("%s: %w", s.name, err)
		}
		took := time.Since(start)
		d.res.Steps = append(d.res.Steps, Step{Name: s.name, Took: took})
		d.say("   took %v", took.Round(time.Millisecond))
	}
	d.res.Total = time.Since(d.begin)
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "step\ttook")
	for _, s := range d.res.Steps {
		fmt.Fprintf(tw, "%s\t%v\n", s.Name, s.Took.Round(time.Millisecond))
	}
	fmt.Fprintf(tw, "6. total\t%v\n", d.res.Total.Round(time.Millisecond))
	tw.Flush()
	return d.res, nil
}

type demo struct {
	cfg   DemoConfig
	out   io.Writer
	begin time.Time
	res   *DemoResult

	bld     *Build
	cloud   *Cloud
	tf      *tfexec.Terraform
	tfDir   string
	tfLog   *os.File
	admin   string
	creds   client.Credentials
	authURL string
	clients Clients
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%7.2fs] ", time.Since(d.begin).Seconds())
	fmt.Fprintf(d.out, format+"\n", args...)
}

// cleanup stops what a failed run left: the clients, and the local cloud with every instance.
func (d *demo) cleanup() {
	d.clients.Close()
	if d.cloud != nil {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Cloud.MaxStopTimeout+15*time.Second)
		defer cancel()
		_ = d.cloud.Stop(ctx)
	}
	if d.tfLog != nil {
		d.tfLog.Close()
	}
}

func (d *demo) build(ctx context.Context) error {
	b, err := BuildAll(ctx, d.cfg.RepoDir, d.cfg.WorkDir, d.cfg.Version)
	if err != nil {
		return err
	}
	d.bld = b
	d.say("   provider %s %s in %s; TF_CLI_CONFIG_FILE=%s", ProviderAddress, b.Version, b.MirrorDir, b.CLIConfig)
	return nil
}

func (d *demo) apply(ctx context.Context) error {
	cc := d.cfg.Cloud
	cc.WorkDir = filepath.Join(d.cfg.WorkDir, "localcloud")
	cloud, err := d.bld.StartCloud(ctx, cc)
	if err != nil {
		return err
	}
	d.cloud = cloud
	d.say("   local cloud at %s (pid %d), release %s", cloud.Info.URL, cloud.PID(), cloud.Info.ReleaseURL)

	d.tfDir = filepath.Join(d.cfg.WorkDir, "tf")
	if err := d.writeConfig(); err != nil {
		return err
	}
	if d.tfLog, err = os.Create(filepath.Join(d.cfg.WorkDir, "terraform.log")); err != nil {
		return err
	}
	if d.tf, err = cloud.Terraform(d.cfg.Terraform, d.tfDir, d.tfLog); err != nil {
		return err
	}
	t0 := time.Now()
	if err := d.tf.Init(ctx); err != nil {
		return fmt.Errorf("terraform init: %w", err)
	}
	d.say("   terraform init: %v (provider from the mirror, no dev_overrides)", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := d.tf.Apply(ctx, tfexec.Var("node_count="+strconv.Itoa(d.cfg.Nodes))); err != nil {
		return fmt.Errorf("terraform apply: %w", err)
	}
	d.say("   terraform apply: %v", time.Since(t0).Round(time.Millisecond))
	outs, err := d.tf.Output(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(outs["auth_url"].Value, &d.authURL); err != nil {
		return fmt.Errorf("output auth_url: %w", err)
	}
	t0 = time.Now()
	if err := d.waitServing(ctx, d.cfg.Nodes); err != nil {
		return err
	}
	d.say("   serving at %s with %d nodes %v after the apply", d.authURL, d.cfg.Nodes, time.Since(t0).Round(time.Millisecond))
	return nil
}

// writeConfig writes the root module: modules/cluster from the repository, the provider with
// no settings (the AWS_* environment points it at the local cloud), and fresh secrets in a
// tfvars file only the owner can read.
func (d *demo) writeConfig() error {
	if err := os.MkdirAll(d.tfDir, 0o700); err != nil {
		return err
	}
	modPath, err := filepath.Rel(d.tfDir, filepath.Join(d.cfg.RepoDir, "modules", "cluster"))
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
	var g, pw, adm [32]byte
	_, _ = rand.Read(g[:])
	_, _ = rand.Read(pw[:])
	_, _ = rand.Read(adm[:])
	password := hex.EncodeToString(pw[:12])
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	d.creds = client.Credentials{Username: "demo", Password: password}
	d.admin = hex.EncodeToString(adm[:16])
	info := d.cloud.Info
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
	if err := os.WriteFile(filepath.Join(d.tfDir, "main.tf"), []byte(main), 0o644); err != nil {
		return err
	}
	vars := map[string]string{
		"gossip_key":       base64.StdEncoding.EncodeToString(g[:]),
		"auth_signing_key": string(privPEM),
		"auth_public_keys": string(pubPEM),
		"auth_users":       "demo:" + string(hash) + "\n",
		"admin_token":      d.admin,
	}
	raw, err := json.MarshalIndent(vars, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.tfDir, "secrets.auto.tfvars.json"), raw, 0o600)
}

// waitServing waits until every instance booted with its unit active, and auth lists nodes
// alive members.
func (d *demo) waitServing(ctx context.Context, nodes int) error {
	deadline := time.Now().Add(d.cfg.ReadyTimeout)
	var last error
	for {
		if last = d.serving(ctx, nodes); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving within %v: %w", d.cfg.ReadyTimeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *demo) serving(ctx context.Context, nodes int) error {
	sts, err := d.cloud.Status(ctx)
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
	ns, err := d.authNodes(ctx)
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

// authNodes is auth's GET /v1/nodes, with the admin token.
func (d *demo) authNodes(ctx context.Context) ([]wire.NodeStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.authURL+wire.NodesPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.admin)
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

func (d *demo) connect(ctx context.Context) error {
	t0 := time.Now()
	if err := d.clients.Connect(ctx, d.authURL, d.creds, d.cfg.Clients, d.cfg.Concurrency); err != nil {
		return err
	}
	took := time.Since(t0)
	d.say("   %d connected in %v (%.0f/s): auth request, then straight to the node's public address", d.clients.Len(),
		took.Round(time.Millisecond), float64(d.cfg.Clients)/took.Seconds())
	rows, err := d.distribution(ctx)
	if err != nil {
		return err
	}
	d.res.Before = rows
	return nil
}

// distribution prints and checks, per node, auth's assignments against the node's own count
// of live connections, read from the node's metrics at its private address.
func (d *demo) distribution(ctx context.Context) ([]NodeRow, error) {
	counts, urls := d.clients.ByNode()
	sts, err := d.cloud.Status(ctx)
	if err != nil {
		return nil, err
	}
	var rows []NodeRow
	total := 0
	for _, s := range sts {
		if s.State != "running" || s.Tags["wsdirect:role"] != "node" {
			continue
		}
		n, err := NodeConnections(ctx, net.JoinHostPort(s.PrivateIP, "8080"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Hostname, err)
		}
		if u := urls[s.Hostname]; u != "" && hostOf(u) != s.PublicIP {
			return nil, fmt.Errorf("auth sent %s's clients to %s, but its public IP is %s", s.Hostname, u, s.PublicIP)
		}
		rows = append(rows, NodeRow{ID: s.Hostname, URL: "ws://" + net.JoinHostPort(s.PublicIP, "8080") + "/ws", Assigned: counts[s.Hostname], ServerSide: n})
		total += counts[s.Hostname]
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "   node\tpublic URL\tassigned by auth\tcounted by the node\tshare\t")
	maxN := 0
	for _, r := range rows {
		fmt.Fprintf(tw, "   %s\t%s\t%d\t%d\t%.1f%%\t\n", r.ID, r.URL, r.Assigned, r.ServerSide, 100*float64(r.Assigned)/float64(max(total, 1)))
		maxN = max(maxN, r.Assigned)
	}
	tw.Flush()
	if len(rows) > 0 {
		fmt.Fprintf(d.out, "   max/mean: %.3f\n", float64(maxN)/(float64(total)/float64(len(rows))))
	}
	if total != d.clients.Len() {
		return rows, fmt.Errorf("%d connections assigned to running nodes, %d open", total, d.clients.Len())
	}
	for _, r := range rows {
		if r.Assigned != r.ServerSide {
			return rows, fmt.Errorf("node %s: auth assigned %d connections, the node counts %d", r.ID, r.Assigned, r.ServerSide)
		}
	}
	return rows, nil
}

func (d *demo) scale(ctx context.Context) error {
	t0 := time.Now()
	if err := d.tf.Apply(ctx, tfexec.Var("node_count="+strconv.Itoa(d.cfg.ScaleTo))); err != nil {
		return fmt.Errorf("terraform apply: %w", err)
	}
	d.say("   terraform apply: %v", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := d.waitServing(ctx, d.cfg.ScaleTo); err != nil {
		return err
	}
	d.say("   the new node joined by tag; auth assigns %d nodes %v after the apply", d.cfg.ScaleTo, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := d.clients.Connect(ctx, d.authURL, d.creds, d.cfg.ScaleClients, d.cfg.Concurrency); err != nil {
		return err
	}
	d.say("   %d more clients connected in %v", d.cfg.ScaleClients, time.Since(t0).Round(time.Millisecond))
	rows, err := d.distribution(ctx)
	if err != nil {
		return err
	}
	d.res.After = rows
	before := map[string]bool{}
	for _, r := range d.res.Before {
		before[r.ID] = true
	}
	for _, r := range rows {
		if !before[r.ID] {
			d.res.NewNode, d.res.NewNodeClients = r.ID, r.Assigned
		}
	}
	if d.res.NewNode == "" || d.res.NewNodeClients == 0 {
		return fmt.Errorf("the new node %q took no clients", d.res.NewNode)
	}
	d.say("   the new node %s took %d of the %d new clients", d.res.NewNode, d.res.NewNodeClients, d.cfg.ScaleClients)
	return nil
}

func (d *demo) destroy(ctx context.Context) error {
	d.clients.Close()
	t0 := time.Now()
	if err := d.tf.Destroy(ctx, tfexec.Var("node_count="+strconv.Itoa(d.cfg.ScaleTo))); err != nil {
		return fmt.Errorf("terraform destroy: %w", err)
	}
	d.say("   terraform destroy: %v", time.Since(t0).Round(time.Millisecond))
	left, err := CheckNothingLeft(ctx, d.cloud)
	if err != nil {
		return err
	}
	d.say("   %s", left)
	cloudWork := filepath.Join(d.cfg.WorkDir, "localcloud")
	stopCtx, cancel := context.WithTimeout(ctx, d.cfg.Cloud.MaxStopTimeout+15*time.Second)
	defer cancel()
	if err := d.cloud.Stop(stopCtx); err != nil {
		return fmt.Errorf("stopping the local cloud: %w", err)
	}
	d.cloud = nil
	procs, err := ProcessesUnder(d.cfg.WorkDir)
	if err != nil {
		return err
	}
	if len(procs) > 0 {
		return fmt.Errorf("processes left after the local cloud stopped: %v", procs)
	}
	d.say("   local cloud stopped; no process runs from %s", cloudWork)
	return nil
}

// CheckNothingLeft checks, after a destroy, that the EC2 API shows no instance that is not
// terminated and no Elastic IP, that the local cloud runs no instance process, and that no
// process runs from the instances' directories. It returns a one-line summary.
func CheckNothingLeft(ctx context.Context, c *Cloud) (string, error) {
	cl := ec2.NewFromConfig(aws.Config{
		Region:       c.Info.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(localcloud.AccessKeyID, localcloud.SecretAccessKey, ""),
		BaseEndpoint: aws.String(c.Info.URL),
	})
	ins, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		return "", err
	}
	seen, live := 0, 0
	for _, r := range ins.Reservations {
		for _, in := range r.Instances {
			seen++
			if in.State.Name != ec2types.InstanceStateNameTerminated {
				live++
			}
		}
	}
	addrs, err := cl.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		return "", err
	}
	sts, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	var pids []int
	for _, s := range sts {
		pids = append(pids, s.PIDs()...)
		if s.Phase != "terminated" {
			return "", fmt.Errorf("instance %s is %s (phase %s)", s.ID, s.State, s.Phase)
		}
	}
	procs, err := ProcessesUnder(filepath.Join(c.Info.WorkDir, "instances"))
	if err != nil {
		return "", err
	}
	if live > 0 || len(addrs.Addresses) > 0 || len(pids) > 0 || len(procs) > 0 {
		return "", fmt.Errorf("left after destroy: %d instances not terminated, %d Elastic IPs, unit processes %v, processes %v",
			live, len(addrs.Addresses), pids, procs)
	}
	return fmt.Sprintf("nothing left: %d of %d instances terminated, 0 Elastic IPs, 0 instance processes", seen, seen), nil
}
