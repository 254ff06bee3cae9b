package compare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/tflocal"
	"github.com/wsdirect/terraform-provider-wsdirect/node"
)

// The values of RebalanceResult.Path.
const (
	PathLocalProcesses = "local processes"
	PathTerraform      = "terraform apply of modules/cluster on the local cloud"
)

// scaleOut is the cluster a rebalance run holds its clients on and grows
// by one node.
type scaleOut interface {
	// path names how the cluster runs, for the result.
	path() string
	// fleet fills in where and as whom the clients log in.
	fleet(fc *FleetConfig)
	// nodes is the number of nodes before the scale-out.
	nodes() int
	// grow adds a node and returns its name once it serves and auth
	// lists it.
	grow(ctx context.Context) (string, error)
	stop()
}

// localScaleOut is a cluster of processes started directly
// (localcluster); it grows by starting one more node process.
type localScaleOut struct{ env *Env }

func startLocalScaleOut(ctx context.Context, cfg *RebalanceConfig, say func(string, ...any)) (*localScaleOut, error) {
	cfg.Env.NodeArgs = append(append([]string(nil), cfg.Env.NodeArgs...),
		"-rebalance-max-rate", strconv.FormatFloat(cfg.MaxRate, 'f', -1, 64),
		// The rounds are logged at info.
		"-log-level", "info")
	say("starting auth and %d node processes (rebalancing at most %g clients/s)", cfg.Env.Nodes, cfg.MaxRate)
	env, err := StartEnv(ctx, PathDirect, cfg.Env)
	if err != nil {
		return nil, err
	}
	return &localScaleOut{env: env}, nil
}

func (l *localScaleOut) path() string { return PathLocalProcesses }

func (l *localScaleOut) fleet(fc *FleetConfig) {
	creds := l.env.Credentials()
	fc.AuthURL, fc.Username, fc.Password = l.env.AuthURL(), creds.Username, creds.Password
}

func (l *localScaleOut) nodes() int { return len(l.env.Cluster.Nodes) }

func (l *localScaleOut) grow(ctx context.Context) (string, error) {
	p, err := l.env.Cluster.AddNode(ctx)
	if err != nil {
		return "", err
	}
	return p.Name, nil
}

func (l *localScaleOut) stop() { l.env.Stop() }

// TerraformScaleOut runs the scale-out through terraform apply of
// modules/cluster on the local cloud (docs/localcloud.md). Start from
// DefaultTerraformScaleOut.
type TerraformScaleOut struct {
	// Terraform is the terraform binary. Required.
	Terraform string
	// RepoDir is this module's root: the binaries, the provider and
	// modules/cluster come from it. Required.
	RepoDir string
	// WorkDir holds the build, the local cloud and the configuration; it
	// must not exist or be empty. Required.
	WorkDir string
	// Cloud configures the local cloud; its WorkDir is set inside WorkDir.
	Cloud tflocal.CloudConfig
	// Users is how many users auth's users file holds (see
	// tflocal.ClusterUsers); the clients are spread over them. At least 1.
	Users int
	// BcryptCost of their hashes, within bcrypt's range.
	BcryptCost int
	// ReadyTimeout bounds each wait for the cluster to serve. Must be > 0.
	ReadyTimeout time.Duration
	// NodeDrainRate and NodeDrainDeadline are modules/cluster's
	// drain_rate and drain_deadline (whole seconds); 0 keeps the binary's
	// defaults.
	NodeDrainRate     int
	NodeDrainDeadline time.Duration
	// Build, when set, is binaries and a provider already built from
	// RepoDir (tflocal.BuildAll, version 0.0.1), shared by several runs;
	// nil builds them into WorkDir.
	Build *tflocal.Build
}

// DefaultTerraformScaleOut returns the defaults; the caller sets
// Terraform, RepoDir and WorkDir.
func DefaultTerraformScaleOut() TerraformScaleOut {
	return TerraformScaleOut{
		Cloud: tflocal.DefaultCloudConfig(),
		// 110 users: about 110 of 12,000 clients each, under a node's 100
		// connections per user on 3 or 4 nodes, and under 3 connects a
		// second each at 300 a second, under auth's 10 unredeemed tokens
		// per user. Their users file (about 7.6 KB) fits one Parameter
		// Store parameter (8 KB in the Advanced tier).
		Users: 110,
		// What wsdirect-auth hash-password writes: first logins, and moved
		// clients whose user's cached login has lapsed, pay for it.
		BcryptCost: bcrypt.DefaultCost,
		// Booting instances and installing the release, on a loaded
		// machine.
		ReadyTimeout: 3 * time.Minute,
	}
}

func (t *TerraformScaleOut) validate() error {
	switch {
	case t.Terraform == "" || t.RepoDir == "" || t.WorkDir == "":
		return errors.New("benchcompare: Terraform, RepoDir and WorkDir are required for the terraform scale-out")
	case t.Users < 1:
		return fmt.Errorf("benchcompare: Terraform.Users must be at least 1, got %d", t.Users)
	case t.BcryptCost < bcrypt.MinCost || t.BcryptCost > bcrypt.MaxCost:
		return fmt.Errorf("benchcompare: Terraform.BcryptCost %d out of range %d-%d", t.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	case t.ReadyTimeout <= 0:
		return fmt.Errorf("benchcompare: Terraform.ReadyTimeout must be > 0, got %s", t.ReadyTimeout)
	case t.NodeDrainRate < 0 || t.NodeDrainDeadline < 0 || t.NodeDrainDeadline%time.Second != 0:
		return fmt.Errorf("benchcompare: Terraform.NodeDrainRate (%d) must not be negative, NodeDrainDeadline (%s) whole seconds", t.NodeDrainRate, t.NodeDrainDeadline)
	}
	if ents, err := os.ReadDir(t.WorkDir); err == nil && len(ents) > 0 {
		return fmt.Errorf("benchcompare: Terraform.WorkDir %s is not empty", t.WorkDir)
	}
	return nil
}

// terraformScaleOut is modules/cluster applied on the local cloud; it grows
// by applying node_count + 1.
type terraformScaleOut struct {
	cfg     TerraformScaleOut
	n       int
	cloud   *tflocal.Cloud
	ca      *tflocal.CA
	mod     *tflocal.ClusterModule
	tfLog   *os.File
	routes  string
	say     func(string, ...any)
	version string
}

func startTerraformScaleOut(ctx context.Context, cfg *RebalanceConfig, say func(string, ...any)) (*terraformScaleOut, error) {
	if def := node.DefaultRebalanceConfig().MaxRate; cfg.MaxRate != def {
		// modules/cluster has no setting for it: the nodes run with the
		// binary's default.
		return nil, fmt.Errorf("benchcompare: the terraform scale-out runs the nodes with the default rebalance rate (%g/s); modules/cluster does not set -rebalance-max-rate", def)
	}
	return startTerraformCluster(ctx, *cfg.Terraform, cfg.Env.Nodes, say)
}

// startTerraformCluster builds the binaries and the provider, starts the
// local cloud and the ACME CA, and applies modules/cluster with n nodes.
func startTerraformCluster(ctx context.Context, tf TerraformScaleOut, n int, say func(string, ...any)) (_ *terraformScaleOut, err error) {
	t := &terraformScaleOut{cfg: tf, n: n, say: say, version: "0.0.1"}
	defer func() {
		if err != nil {
			t.stop()
		}
	}()
	if err := os.MkdirAll(t.cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	bld := t.cfg.Build
	if bld == nil {
		say("building the binaries and the provider from %s", t.cfg.RepoDir)
		if bld, err = tflocal.BuildAll(ctx, t.cfg.RepoDir, t.cfg.WorkDir, t.version); err != nil {
			return nil, err
		}
	} else if bld.Version != t.version {
		return nil, fmt.Errorf("benchcompare: Terraform.Build is version %s, want %s", bld.Version, t.version)
	}
	cc := t.cfg.Cloud
	cc.WorkDir = filepath.Join(t.cfg.WorkDir, "localcloud")
	if t.cloud, err = bld.StartCloud(ctx, cc); err != nil {
		return nil, err
	}
	say("local cloud at %s (pid %d); writing %d users at bcrypt cost %d", t.cloud.Info.URL, t.cloud.PID(), t.cfg.Users, t.cfg.BcryptCost)
	if t.tfLog, err = os.Create(filepath.Join(t.cfg.WorkDir, "terraform.log")); err != nil {
		return nil, err
	}
	if t.ca, err = tflocal.StartCA(filepath.Join(t.cfg.WorkDir, "acme-ca")); err != nil {
		return nil, fmt.Errorf("ACME CA: %w", err)
	}
	users := tflocal.ClusterUsers{Count: t.cfg.Users, BcryptCost: t.cfg.BcryptCost, From: tflocal.DefaultClientCIDR}
	if t.mod, err = tflocal.NewClusterModule(ctx, t.cloud, t.ca, t.cfg.Terraform, t.cfg.RepoDir, filepath.Join(t.cfg.WorkDir, "tf"), users, t.tfLog); err != nil {
		return nil, err
	}
	if err := t.mod.SetNodeDrain(t.cfg.NodeDrainRate, t.cfg.NodeDrainDeadline); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := t.mod.Apply(ctx, t.n); err != nil {
		return nil, err
	}
	if err := t.mod.WaitServing(ctx, t.n, t.cfg.ReadyTimeout); err != nil {
		return nil, err
	}
	say("terraform apply of modules/cluster with node_count = %d: serving at %s %v after the apply began", t.n, t.mod.AuthURL, time.Since(t0).Round(time.Millisecond))
	t.routes = filepath.Join(t.cfg.WorkDir, "routes.json")
	return t, t.writeRoutes(ctx)
}

// writeRoutes maps every instance's public IP to its private IP for the
// clients (FleetConfig.RoutesFile), replacing the file atomically.
func (t *terraformScaleOut) writeRoutes(ctx context.Context) error {
	sts, err := t.cloud.Status(ctx)
	if err != nil {
		return err
	}
	m := map[string]string{}
	for _, s := range sts {
		if s.PublicIP != "" && s.PrivateIP != "" {
			m[s.PublicIP] = s.PrivateIP
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := t.routes + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, t.routes)
}

func (t *terraformScaleOut) path() string {
	return "terraform apply of modules/cluster on the local cloud"
}

func (t *terraformScaleOut) fleet(fc *FleetConfig) {
	fc.AuthURL, fc.RoutesFile, fc.RootsPEM = t.mod.AuthURL, t.routes, t.ca.IssuerRoot
	for _, u := range t.mod.Users {
		fc.Users = append(fc.Users, FleetUser{Username: u.Creds.Username, Password: u.Creds.Password})
	}
}

func (t *terraformScaleOut) nodes() int { return t.n }

func (t *terraformScaleOut) grow(ctx context.Context) (string, error) {
	before, err := t.nodeNames(ctx)
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	if err := t.mod.Apply(ctx, t.n+1); err != nil {
		return "", err
	}
	t.say("terraform apply with node_count = %d took %v", t.n+1, time.Since(t0).Round(time.Millisecond))
	// The new instance is running: tell the clients how to reach it before
	// auth can send any there.
	if err := t.writeRoutes(ctx); err != nil {
		return "", err
	}
	if err := t.mod.WaitServing(ctx, t.n+1, t.cfg.ReadyTimeout); err != nil {
		return "", err
	}
	t.n++
	after, err := t.nodeNames(ctx)
	if err != nil {
		return "", err
	}
	for name := range after {
		if !before[name] {
			return name, nil
		}
	}
	return "", errors.New("benchcompare: no new node after the apply")
}

// nodeNames lists the running node instances' host names (their member
// names).
func (t *terraformScaleOut) nodeNames(ctx context.Context) (map[string]bool, error) {
	sts, err := t.cloud.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range sts {
		if s.State == "running" && s.Tags["wsdirect:role"] == "node" {
			out[s.Hostname] = true
		}
	}
	return out, nil
}

// stop destroys what terraform made and stops the local cloud.
func (t *terraformScaleOut) stop() {
	if t.mod != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		if err := t.mod.Destroy(ctx, t.n); err != nil {
			t.say("terraform destroy: %v", err)
		} else if left, err := tflocal.CheckNothingLeft(ctx, t.cloud); err == nil {
			t.say("terraform destroy: %s", left)
		}
		cancel()
	}
	if t.cloud != nil {
		ctx, cancel := context.WithTimeout(context.Background(), t.cfg.Cloud.MaxStopTimeout+15*time.Second)
		_ = t.cloud.Stop(ctx)
		cancel()
	}
	t.ca.Close()
	if t.tfLog != nil {
		t.tfLog.Close()
	}
}
