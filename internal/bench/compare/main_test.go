package compare

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/haproxycfg"
)

// fleetWorkerEnv makes the test binary act as a drill worker, so the
// multi-process path of the drills is tested without building
// wsdirect-bench.
const fleetWorkerEnv = "BENCHCOMPARE_TEST_FLEET_WORKER"

var (
	binDir   string
	buildMu  sync.Mutex
	buildErr error
	built    bool
)

func TestMain(m *testing.M) {
	if os.Getenv(fleetWorkerEnv) == "1" {
		if err := RunFleetWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "benchcompare-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// servers returns an EnvConfig for the real binaries (built once per test
// run) and haproxy. Without haproxy the test skips, unless CI is set: there
// it must be installed, so it fails.
func servers(t *testing.T) EnvConfig {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real wsdirect and haproxy processes")
	}
	hp, err := haproxycfg.FindBinary()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but haproxy is missing: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if !built {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		buildErr = localcluster.BuildBinaries(ctx, binDir)
		built = true
		t.Logf("built wsdirect-node and wsdirect-auth in %v", time.Since(start).Round(time.Millisecond))
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	c := DefaultEnvConfig()
	c.BinDir, c.HAProxyBinary, c.Logf = binDir, hp, t.Logf
	return c
}

// testWriter sends progress lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
