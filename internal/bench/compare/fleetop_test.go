package compare

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/tflocal"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// TestFleetOpTerraformSmoke is the rolling upgrade and the scale-in at CI
// size, through terraform apply of modules/cluster on the local cloud:
// 3 nodes with 300 managed clients. The upgrade replaces every node and the
// auth host: no client is lost, every one was drained with 4000 (none saw a
// connection break), some node was ready in every sample, and auth_url
// stayed. The scale-in drains the removed node's clients the same way.
func TestFleetOpTerraformSmoke(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("Terraform tests skipped unless TF_ACC=1")
	}
	repo, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		tf = filepath.Join(repo, "bin", "terraform")
	}
	if _, err := os.Stat(tf); err != nil {
		t.Fatalf("terraform binary: %v (make test builds it into ./bin)", err)
	}
	if err := tflocal.LowPortsAllowed(); err != nil && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bld, err := tflocal.BuildAll(ctx, repo, t.TempDir(), "0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for i, op := range []string{OpUpgrade, OpScaleIn} {
		t.Run(op, func(t *testing.T) {
			cfg := DefaultFleetOpConfig()
			cfg.Op = op
			cfg.Clients = 300
			cfg.Quiet = 2 * time.Second
			cfg.Progress = testWriter{t}
			cfg.Terraform.Terraform, cfg.Terraform.RepoDir, cfg.Terraform.Build = tf, repo, bld
			cfg.Terraform.WorkDir = filepath.Join(t.TempDir(), "run")
			// Ranges of this test's own, apart from other packages' tests.
			cfg.Terraform.Cloud.VPCCIDR = netip.MustParsePrefix("127." + strconv.Itoa(58+2*i) + ".0.0/16")
			cfg.Terraform.Cloud.PublicCIDR = netip.MustParsePrefix("127." + strconv.Itoa(59+2*i) + ".0.0/16")
			cfg.Terraform.Cloud.BootDelay = 200 * time.Millisecond
			cfg.Terraform.Users, cfg.Terraform.BcryptCost = 30, bcrypt.MinCost
			// In this process: 300 clients, and the test binary is no
			// bench binary that could run a worker.
			cfg.WorkerArgv = nil
			res, err := FleetOp(ctx, cfg)
			if res != nil {
				var buf bytes.Buffer
				res.WriteTable(&buf)
				t.Logf("\n%s", buf.String())
			}
			if err != nil {
				t.Fatal(err)
			}
			moved := cfg.Clients
			if op == OpScaleIn {
				// The clients of the node that went.
				for name, n := range res.Before {
					if _, kept := res.After[name]; kept {
						moved -= n
					}
				}
				if moved == 0 || len(res.After) != 2 {
					t.Fatalf("scale-in: before %v, after %v", res.Before, res.After)
				}
			} else {
				for name := range res.Before {
					if _, ok := res.After[name]; ok {
						t.Errorf("node %s survived the upgrade", name)
					}
				}
				if res.AuthURLAfter != res.AuthURLBefore {
					t.Errorf("auth_url changed: %s → %s", res.AuthURLBefore, res.AuthURLAfter)
				}
			}
			switch {
			case res.Lost != 0 || res.GaveUp != 0:
				t.Errorf("lost %d, gave up %d", res.Lost, res.GaveUp)
			case res.Drained() < int64(moved):
				t.Errorf("%d closes with %d, want at least the %d clients of the replaced nodes (codes %v)", res.Drained(), wire.CloseDraining, moved, res.CloseCodes)
			case res.CloseCodes["1006"] != 0:
				t.Errorf("%d connections broke without a close frame: a node ended before it drained (codes %v)", res.CloseCodes["1006"], res.CloseCodes)
			case res.MinReadyNodes < 1:
				t.Errorf("a sample saw no ready node (ready %d..%d)", res.MinReadyNodes, res.MaxReadyNodes)
			case res.Disconnected < moved || res.GapMaxMs <= 0:
				t.Errorf("%d clients were without a connection (longest %.0f ms), want at least %d", res.Disconnected, res.GapMaxMs, moved)
			}
		})
	}
}
