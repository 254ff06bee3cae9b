package tflocal

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Each test of the package gets its own address ranges, apart from the local cloud's defaults
// and from the other packages' tests, which run in parallel.
var (
	demoVPC        = netip.MustParsePrefix("127.32.0.0/16")
	demoPublic     = netip.MustParsePrefix("127.33.0.0/16")
	examplesVPC    = netip.MustParsePrefix("127.34.0.0/16")
	examplesPublic = netip.MustParsePrefix("127.35.0.0/16")
	demoClients    = netip.MustParsePrefix("127.36.0.0/16")
)

// terraformPath finds the terraform binary as the provider's acceptance tests do:
// TF_ACC_TERRAFORM_PATH, else <repo>/bin/terraform. The tests run with TF_ACC=1 only.
func terraformPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("Terraform tests skipped unless TF_ACC=1")
	}
	p := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if p == "" {
		p = filepath.Join(repoDir(t), "bin", "terraform")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("terraform binary: %v (make test builds it into ./bin)", err)
	}
	return p
}

func repoDir(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var shared struct {
	once sync.Once
	dir  string
	b    *Build
	err  error
}

// sharedBuild builds the binaries and the provider once for the package's tests.
func sharedBuild(t *testing.T) *Build {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "tflocal-build-")
		if shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		shared.b, shared.err = BuildAll(ctx, repoDir(t), shared.dir, "0.0.1")
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.b
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// TestClusterModuleOnLocalCloud is modules/cluster end to end with the real terraform and
// the provider installed from a filesystem mirror: apply 3 nodes and 1 auth host on the local
// cloud; clients connect through auth and every node's own count matches auth's assignments;
// scale out by one and the new node joins by tag and takes clients; destroy, and no instance,
// Elastic IP or process is left (Demo checks each of these and fails otherwise).
func TestClusterModuleOnLocalCloud(t *testing.T) {
	tf := terraformPath(t)
	cfg := DefaultDemoConfig()
	cfg.RepoDir, cfg.Terraform = repoDir(t), tf
	cfg.WorkDir = filepath.Join(t.TempDir(), "demo")
	cfg.Cloud.Listen = "127.0.0.1:0"
	cfg.Cloud.VPCCIDR, cfg.Cloud.PublicCIDR = demoVPC, demoPublic
	cfg.Cloud.BootDelay = 200 * time.Millisecond
	cfg.Cloud.MaxStopTimeout = 20 * time.Second
	cfg.Clients, cfg.ScaleClients = 300, 100
	// CI-sized: fewer users, hashed at the lowest cost (the demo pays bcrypt's default).
	cfg.Users, cfg.ClientCIDR, cfg.BcryptCost = 30, demoClients, bcrypt.MinCost
	if err := LowPortsAllowed(); err != nil && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	var out strings.Builder
	cfg.Out = &out
	// The build is shared with the other tests; Demo's own build step then only links.
	sharedBuild(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	res, err := Demo(ctx, cfg)
	t.Log("\n" + out.String())
	if err != nil {
		if raw, rerr := os.ReadFile(filepath.Join(cfg.WorkDir, "terraform.log")); rerr == nil {
			t.Logf("terraform.log (end):\n%s", lastLines(string(raw), 40))
		}
		logs, _ := filepath.Glob(filepath.Join(cfg.WorkDir, "localcloud", "instances", "*", "console.log"))
		for _, l := range logs {
			raw, _ := os.ReadFile(l)
			// The boot in full: what the installer printed and each runcmd's result are the
			// cause when a unit then fails (a binary never installed restarts forever with
			// 203/EXEC and fills the tail).
			if boot := consoleSources(string(raw), "local-cloud", "cloud-init"); boot != "" {
				t.Logf("%s (every local-cloud and cloud-init line):\n%s", l, boot)
			}
			t.Logf("%s (end):\n%s", l, lastLines(string(raw), 30))
		}
		t.Fatal(err)
	}
	if len(res.Before) != 3 || len(res.After) != 4 {
		t.Fatalf("nodes before/after scale-out: %d/%d, want 3/4", len(res.Before), len(res.After))
	}
	for _, r := range res.Before {
		if r.Assigned == 0 {
			t.Errorf("node %s got no clients of the first %d", r.ID, cfg.Clients)
		}
	}
	// The new node starts empty, so it wins every pick it is drawn for: with power of two
	// choices over 4 nodes it is in half of the pairs, about 50 of 100 clients (binomial,
	// standard deviation 5); the old nodes' rebalance may have moved it more. More than an
	// equal share of the new clients (25) fails only if it is neither preferred nor fed.
	if res.NewNodeClients <= cfg.ScaleClients/cfg.ScaleTo {
		t.Errorf("the new node holds %d clients, want more than an equal share of the %d new ones (%d)", res.NewNodeClients, cfg.ScaleClients, cfg.ScaleClients/cfg.ScaleTo)
	}
}

// consoleSources returns the lines of a console log ("<time> <source>: <text>") whose source
// is one of sources.
func consoleSources(log string, sources ...string) string {
	var out []string
	for _, line := range strings.Split(strings.TrimRight(log, "\n"), "\n") {
		_, rest, _ := strings.Cut(line, " ")
		source, _, ok := strings.Cut(rest, ": ")
		if ok && slices.Contains(sources, source) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestConsoleSources(t *testing.T) {
	log := `2026-12-01T03:30:33.100Z local-cloud: booted i-1 (c6i.large) at 127.32.1.19
2026-12-01T03:30:33.101Z cloud-init: runcmd: /usr/local/lib/wsdirect/install-wsdirect-node.sh
2026-12-01T03:30:33.200Z cloud-init: runcmd[0] /usr/local/lib/wsdirect/install-wsdirect-node.sh: fork/exec /x: text file busy
2026-12-01T03:30:33.300Z wsdirect-node.service: Failed to execute /x/root/usr/local/bin/wsdirect-node: cloud-init: no
2026-12-01T03:30:33.400Z systemd: cloud-init: not this one either
`
	got := consoleSources(log, "local-cloud", "cloud-init")
	want := strings.Join(strings.Split(log, "\n")[:3], "\n")
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
