package tflocal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/localcloud"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// exampleVars gives each example that applies on the local cloud the variables it declares;
// an example missing here must be listed in validateOnly with the reason, so a new example
// cannot slip through untested.
type exampleVars func(e exampleEnv) map[string]any

type exampleEnv struct {
	info                          localcloud.Info
	gossip, pub, priv, users, pwd string
	ca                            *CA
}

func (e exampleEnv) archive(bin string) string {
	return e.info.ReleaseURL + "/" + localcloud.ArchiveName(bin, e.info.ReleaseVersion, runtime.GOARCH)
}

var applyExamples = map[string]exampleVars{
	// The example's own node_count (4), so its Elastic IPs meet the local cloud's quota of 5.
	"complete": func(e exampleEnv) map[string]any {
		return map[string]any{
			"region": e.info.Region, "subnet_ids": []string{"subnet-00000001", "subnet-00000002"},
			"security_group_ids": []string{"sg-00000002"}, "ami": "ami-0123456789abcdef0",
			"release_url": e.info.ReleaseURL, "release_version": e.info.ReleaseVersion, "release_sha256": e.info.ReleaseSHA256,
			"iam_instance_profile": "wsdirect-node", "auth_iam_instance_profile": "wsdirect-auth",
			// Without auth_domain: each auth host gets an IP certificate for its Elastic IP.
			"acme_directory": e.ca.Directory, "acme_ca_root": e.ca.ListenerRoot,
		}
	},
	"data-sources/wsdirect_cloudinit": func(e exampleEnv) map[string]any {
		return map[string]any{"auth_public_keys": e.pub, "release_url": e.archive("wsdirect-node"),
			"acme_directory": e.ca.Directory, "acme_ca_root": e.ca.ListenerRoot}
	},
	"data-sources/wsdirect_haproxy_config": func(exampleEnv) map[string]any { return nil },
	"data-sources/wsdirect_nodes":          func(exampleEnv) map[string]any { return nil },
	"functions/cloudinit":                  func(exampleEnv) map[string]any { return nil },
	"functions/haproxy_config":             func(exampleEnv) map[string]any { return nil },
	"provider":                             func(exampleEnv) map[string]any { return nil },
	"resources/wsdirect_node": func(e exampleEnv) map[string]any {
		return map[string]any{"auth_public_keys": e.pub, "release_url": e.archive("wsdirect-node"),
			"acme_directory": e.ca.Directory, "acme_ca_root": e.ca.ListenerRoot}
	},
}

// validateOnly are the examples that cannot apply here, and why.
var validateOnly = map[string]string{
	"resources/wsdirect_private_ips": "it manages addresses on network interfaces made elsewhere (eni-0123456789abcdef0, " +
		"10.0.1.20), which no emulator can have under those IDs in advance",
}

// TestExamplesApplyOnLocalCloud runs every Terraform example under examples/ with the real
// terraform and the provider from the filesystem mirror: each passes `terraform validate`,
// and each that can apply is applied on the local cloud (with AWS's default quota of 5
// Elastic IPs), its instances must boot and serve, the complete example must take a client
// through its auth hosts, and after destroy nothing may be left.
func TestExamplesApplyOnLocalCloud(t *testing.T) {
	tf := terraformPath(t)
	b := sharedBuild(t)
	repo := repoDir(t)
	work := t.TempDir()
	// A copy of examples/ and modules/, so init writes nothing into the tree and relative module
	// sources still resolve.
	for _, d := range []string{"examples", "modules"} {
		if err := os.CopyFS(filepath.Join(work, d), os.DirFS(filepath.Join(repo, d))); err != nil {
			t.Fatal(err)
		}
	}
	dirs := exampleDirs(t, filepath.Join(work, "examples"))

	cc := DefaultCloudConfig()
	cc.WorkDir = filepath.Join(work, "localcloud")
	cc.Listen = "127.0.0.1:0"
	cc.VPCCIDR, cc.PublicCIDR = examplesVPC, examplesPublic
	cc.BootDelay = 200 * time.Millisecond
	cc.MaxStopTimeout = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cloud, err := b.StartCloud(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if err := cloud.Stop(sctx); err != nil {
			t.Errorf("stopping the local cloud: %v", err)
		}
	}()
	env := newExampleEnv(t, cloud.Info)
	// The ACME CA of the run: the examples' nodes and auth hosts get their certificates from
	// it, not from Let's Encrypt on the internet.
	if env.ca, err = StartCA(filepath.Join(work, "acme-ca")); err != nil {
		if errors.Is(err, ErrLowPorts) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer env.ca.Close()
	// The examples name the secrets under /wsdirect/chat, which their README has the operator
	// create first.
	if err := cloud.PutClusterSecrets(ctx, "/wsdirect/chat", ClusterSecrets{
		"gossip-key": env.gossip, "signing-key": env.priv, "auth-public-keys": env.pub, "users": env.users, "admin-token": "example-admin-token",
	}); err != nil {
		t.Fatal(err)
	}

	for _, rel := range dirs {
		t.Run(rel, func(t *testing.T) {
			vars, apply := applyExamples[rel]
			reason, skipApply := validateOnly[rel]
			if !apply && !skipApply {
				t.Fatalf("example %s is neither applied on the local cloud nor listed in validateOnly with a reason", rel)
			}
			dir := filepath.Join(work, "examples", rel)
			var log strings.Builder
			runner, err := cloud.Terraform(tf, dir, &log)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if t.Failed() {
					t.Logf("terraform output (end):\n%s", lastLines(log.String(), 40))
				}
			}()
			if err := runner.Init(ctx); err != nil {
				t.Fatalf("terraform init: %v", err)
			}
			v, err := runner.Validate(ctx)
			if err != nil {
				t.Fatalf("terraform validate: %v", err)
			}
			for _, d := range v.Diagnostics {
				t.Errorf("terraform validate: %s: %s: %s", d.Severity, d.Summary, d.Detail)
			}
			if !v.Valid {
				t.Fatal("terraform validate: not valid")
			}
			if !apply {
				t.Logf("validated only: %s", reason)
				return
			}
			if m := vars(env); m != nil {
				raw, err := json.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "localcloud.auto.tfvars.json"), raw, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := runner.Apply(ctx); err != nil {
				t.Fatalf("terraform apply: %v", err)
			}
			destroyed := false
			defer func() {
				if !destroyed {
					_ = runner.Destroy(ctx)
				}
			}()
			waitInstancesServe(t, ctx, cloud)
			if rel == "complete" {
				outs, err := runner.Output(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var urls []string
				if err := json.Unmarshal(outs["auth_urls"].Value, &urls); err != nil || len(urls) != 2 {
					t.Fatalf("auth_urls %s: %v", outs["auth_urls"].Value, err)
				}
				// Every auth host answers, and sends clients to nodes that serve them.
				for _, u := range urls {
					var cs Clients
					err := waitOK(ctx, time.Minute, func() error {
						return cs.Connect(ctx, u, []User{{Creds: client.Credentials{Username: "alice", Password: env.pwd}}}, env.ca.Roots, 5, 5)
					})
					cs.Close()
					if err != nil {
						t.Fatalf("clients through %s: %v", u, err)
					}
				}
			}
			if err := runner.Destroy(ctx); err != nil {
				t.Fatalf("terraform destroy: %v", err)
			}
			destroyed = true
			left, err := CheckNothingLeft(ctx, cloud)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(left)
		})
	}
	for rel := range applyExamples {
		if !slices.Contains(dirs, rel) {
			t.Errorf("applyExamples names %s, which is not an example directory", rel)
		}
	}
}

// exampleDirs lists the directories under root holding .tf files, relative to root.
func exampleDirs(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".tf") {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		if !slices.Contains(out, rel) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func newExampleEnv(t *testing.T, info localcloud.Info) exampleEnv {
	t.Helper()
	pub, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := token.EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := token.EncodePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var g [32]byte
	_, _ = rand.Read(g[:])
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return exampleEnv{info: info, gossip: base64.StdEncoding.EncodeToString(g[:]), pub: string(pubPEM), priv: string(privPEM),
		users: "alice:" + string(hash) + "\n", pwd: "s3cret"}
}

// waitInstancesServe waits until every running instance has booted and runs its units.
func waitInstancesServe(t *testing.T, ctx context.Context, c *Cloud) {
	t.Helper()
	err := waitOK(ctx, 90*time.Second, func() error {
		sts, err := c.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range sts {
			if s.State != "running" {
				continue
			}
			if s.Boot != "done" {
				return fmt.Errorf("%s: boot %q %s", s.ID, s.Boot, s.BootError)
			}
			for _, u := range s.Units {
				if u.ActiveState != "active" {
					return fmt.Errorf("%s: %s %s (exit %d): %s", s.ID, u.Name, u.ActiveState, u.ExitStatus, strings.Join(u.Log, "\n"))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sts, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		for _, u := range s.Units {
			if s.State == "running" {
				t.Logf("%s (%s): %s active, %d restarts", s.ID, s.Tags["Name"], u.Name, u.Restarts)
			}
		}
	}
}

// waitOK retries f every 200ms until it succeeds or timeout passes.
func waitOK(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
