package tflocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/localcloud"
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
	// Users is how many users the clients log in as, round robin, each from an address of
	// its own in ClientCIDR: auth holds each address to a few password checks at once and
	// each user to 10 unused tokens, and each node each user to 100 connections, as it would
	// people. Default 100.
	Users int
	// ClientCIDR holds the users' addresses: loopback, apart from the cloud's ranges.
	// Default 127.42.0.0/16.
	ClientCIDR netip.Prefix
	// BcryptCost is the cost of the users' hashes. Default bcrypt.DefaultCost: the first
	// login of each user pays it, later ones hit auth's credential cache.
	BcryptCost int
	// ReadyTimeout bounds each wait for the cluster to serve. Default 2m.
	ReadyTimeout time.Duration
	// Out receives the narrative. nil = io.Discard.
	Out io.Writer
}

// DefaultDemoConfig returns the defaults described on each DemoConfig field.
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{
		Version: "0.0.1", Cloud: DefaultCloudConfig(), Nodes: 3, ScaleTo: 4, Clients: 3000, ScaleClients: 1000,
		Concurrency: 64, Users: 100, ClientCIDR: DefaultClientCIDR, BcryptCost: bcrypt.DefaultCost,
		ReadyTimeout: 2 * time.Minute,
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
	if c.Clients < 1 || c.ScaleClients < 1 || c.Concurrency < 1 || c.Users < 1 || c.ReadyTimeout <= 0 {
		errs = append(errs, errors.New("tflocal: Clients, ScaleClients, Concurrency, Users and ReadyTimeout must be positive"))
	}
	if !c.ClientCIDR.Addr().IsLoopback() || c.ClientCIDR.Bits() > 30 || c.Users > 1<<(32-c.ClientCIDR.Bits())-2 {
		errs = append(errs, fmt.Errorf("tflocal: ClientCIDR %v must be a loopback range with an address per user (%d)", c.ClientCIDR, c.Users))
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		errs = append(errs, fmt.Errorf("tflocal: BcryptCost %d out of range %d-%d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost))
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
	Steps         []Step
	Before, After []NodeRow
	NewNode       string
	// NewNodeClients is what the new node holds at the end: new clients auth sent it, and
	// clients the old nodes moved to it when they rebalanced (docs/design.md section 15).
	NewNodeClients int
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
	ca      *CA
	mod     *ClusterModule
	tfLog   *os.File
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
	d.ca.Close()
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
	if d.ca, err = StartCA(filepath.Join(d.cfg.WorkDir, "acme-ca")); err != nil {
		return fmt.Errorf("ACME CA: %w", err)
	}
	d.say("   ACME CA (pebble, Let's Encrypt's test server) at %s: every instance gets its certificate from it", d.ca.Directory)

	if d.tfLog, err = os.Create(filepath.Join(d.cfg.WorkDir, "terraform.log")); err != nil {
		return err
	}
	t0 := time.Now()
	users := ClusterUsers{Count: d.cfg.Users, BcryptCost: d.cfg.BcryptCost, From: d.cfg.ClientCIDR}
	if d.mod, err = NewClusterModule(ctx, cloud, d.ca, d.cfg.Terraform, d.cfg.RepoDir, filepath.Join(d.cfg.WorkDir, "tf"), users, d.tfLog); err != nil {
		return err
	}
	d.say("   %d users (bcrypt cost %d, addresses from %v), secrets in the Parameter Store, terraform init: %v (provider from the mirror, no dev_overrides)",
		d.cfg.Users, d.cfg.BcryptCost, d.cfg.ClientCIDR, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := d.mod.Apply(ctx, d.cfg.Nodes); err != nil {
		return err
	}
	d.say("   terraform apply: %v; role policies from the module's outputs attached (ssm:GetParameter, kms:Decrypt, ec2:DescribeInstances)", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := d.mod.WaitServing(ctx, d.cfg.Nodes, d.cfg.ReadyTimeout); err != nil {
		return err
	}
	d.say("   serving at %s with %d nodes %v after the apply", d.mod.AuthURL, d.cfg.Nodes, time.Since(t0).Round(time.Millisecond))
	return nil
}

func (d *demo) connect(ctx context.Context) error {
	t0 := time.Now()
	if err := d.clients.Connect(ctx, d.mod.AuthURL, d.mod.Users, d.ca.Roots, d.cfg.Clients, d.cfg.Concurrency); err != nil {
		return err
	}
	took := time.Since(t0)
	d.say("   %d connected in %v (%.0f/s) as %d users: https:// auth request, then wss:// straight to the node's public address", d.clients.Len(),
		took.Round(time.Millisecond), float64(d.cfg.Clients)/took.Seconds(), len(d.mod.Users))
	rows, err := d.distribution(ctx)
	if err != nil {
		return err
	}
	d.res.Before = rows
	return nil
}

// distribution prints and checks, per node, auth's assignments against the node's own count
// of live connections, read from the node's metrics at its private address. Clients a node
// moves (a rebalance after the scale-out) are on their way for a moment, so it checks again
// until the two agree, for at most ReadyTimeout.
func (d *demo) distribution(ctx context.Context) ([]NodeRow, error) {
	deadline := time.Now().Add(d.cfg.ReadyTimeout)
	for {
		rows, total, err := d.tally(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "   node\tpublic URL\tassigned by auth\tcounted by the node\tshare\t")
			maxN := 0
			for _, r := range rows {
				fmt.Fprintf(tw, "   %s\t%s\t%d\t%d\t%.1f%%\t\n", r.ID, r.URL, r.Assigned, r.ServerSide, 100*float64(r.Assigned)/float64(max(total, 1)))
				maxN = max(maxN, r.Assigned)
			}
			tw.Flush()
			if len(rows) > 0 && total > 0 {
				fmt.Fprintf(d.out, "   max/mean: %.3f\n", float64(maxN)/(float64(total)/float64(len(rows))))
			}
			return rows, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tally is one look at the clients and the nodes; it errs when they disagree.
func (d *demo) tally(ctx context.Context) ([]NodeRow, int, error) {
	counts, urls := d.clients.ByNode()
	sts, err := d.cloud.Status(ctx)
	if err != nil {
		return nil, 0, err
	}
	var rows []NodeRow
	total := 0
	for _, s := range sts {
		if s.State != "running" || s.Tags["wsdirect:role"] != "node" {
			continue
		}
		n, err := NodeConnections(ctx, net.JoinHostPort(s.PrivateIP, "443"), s.PublicIP, d.ca.Roots)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", s.Hostname, err)
		}
		if u := urls[s.Hostname]; u != "" && hostOf(u) != s.PublicIP {
			return nil, 0, fmt.Errorf("auth sent %s's clients to %s, but its public IP is %s", s.Hostname, u, s.PublicIP)
		}
		rows = append(rows, NodeRow{ID: s.Hostname, URL: "wss://" + s.PublicIP + "/ws", Assigned: counts[s.Hostname], ServerSide: n})
		total += counts[s.Hostname]
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	if total != d.clients.Len() {
		return rows, total, fmt.Errorf("%d connections assigned to running nodes, %d open", total, d.clients.Len())
	}
	for _, r := range rows {
		if r.Assigned != r.ServerSide {
			return rows, total, fmt.Errorf("node %s: auth assigned %d connections, the node counts %d", r.ID, r.Assigned, r.ServerSide)
		}
	}
	return rows, total, nil
}

func (d *demo) scale(ctx context.Context) error {
	t0 := time.Now()
	if err := d.mod.Apply(ctx, d.cfg.ScaleTo); err != nil {
		return err
	}
	d.say("   terraform apply: %v", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := d.mod.WaitServing(ctx, d.cfg.ScaleTo, d.cfg.ReadyTimeout); err != nil {
		return err
	}
	d.say("   the new node joined by tag; auth assigns %d nodes %v after the apply", d.cfg.ScaleTo, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := d.clients.Connect(ctx, d.mod.AuthURL, d.mod.Users, d.ca.Roots, d.cfg.ScaleClients, d.cfg.Concurrency); err != nil {
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
	d.say("   the new node %s holds %d clients (of the %d new ones, and moved by the old nodes' rebalance)", d.res.NewNode, d.res.NewNodeClients, d.cfg.ScaleClients)
	return nil
}

func (d *demo) destroy(ctx context.Context) error {
	d.clients.Close()
	t0 := time.Now()
	if err := d.mod.Destroy(ctx, d.cfg.ScaleTo); err != nil {
		return err
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
	d.ca.Close()
	d.ca = nil
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
		// More than the SDK's 3 attempts, with its backoff: once, on a
		// loaded machine, all 3 reads of a DescribeInstances response here
		// failed with "use of closed network connection" right after a
		// terraform run (cause not found; not reproduced since).
		RetryMaxAttempts: 8,
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

// makeUsers makes n users with random passwords, each with the next address of from: the
// users, and the users file (bcrypt at cost) auth checks them against. The hashes are made on
// every core.
func makeUsers(n int, from netip.Prefix, cost int) ([]User, string, error) {
	users := make([]User, n)
	creds := make([]client.Credentials, n)
	addr := from.Masked().Addr()
	lines := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i := range n {
		var pw [12]byte
		_, _ = rand.Read(pw[:])
		creds[i] = client.Credentials{Username: fmt.Sprintf("user%d", i), Password: hex.EncodeToString(pw[:])}
		addr = addr.Next()
		users[i] = User{Creds: creds[i], From: addr}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			hash, err := bcrypt.GenerateFromPassword([]byte(creds[i].Password), cost)
			lines[i], errs[i] = creds[i].Username+":"+string(hash)+"\n", err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, "", err
	}
	return users, strings.Join(lines, ""), nil
}
