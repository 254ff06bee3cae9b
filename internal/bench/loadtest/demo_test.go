package loadtest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
)

// TestDemoSmall runs the `make demo` flow at small scale against freshly
// built binaries, so the demo cannot rot: 300 clients, 3 nodes, over TLS
// from the local test CA as `make demo` runs it, kill the busiest, everyone
// reconnects elsewhere through auth.
func TestDemoSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binaries")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := t.TempDir()
	if err := localcluster.BuildBinaries(ctx, bin); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg := DefaultDemoConfig()
	cfg.BinDir, cfg.Clients, cfg.Rate = bin, 300, 500
	cfg.Cluster.Dir, cfg.Cluster.TLS, cfg.Out = t.TempDir(), true, &out
	res, err := Demo(ctx, cfg)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 300 || len(res.Before) != 3 {
		t.Fatalf("connected %d over %v", res.Connected, res.Before)
	}
	if !strings.Contains(out.String(), "LOCAL TEST CA") || !strings.Contains(out.String(), "wss://") {
		t.Errorf("the demo does not say it runs TLS from a local test CA:\n%s", out.String())
	}
	if res.Affected == 0 || res.Affected != res.Before[res.Killed] {
		t.Errorf("affected %d, killed node had %d", res.Affected, res.Before[res.Killed])
	}
	total := 0
	for node, n := range res.After {
		if node == res.Killed {
			t.Errorf("%d clients still on killed %s", n, node)
		}
		total += n
	}
	if total != 300 || len(res.After) != 2 {
		t.Errorf("after the kill: %v", res.After)
	}
	if res.Reconnect <= 0 || res.Handshake.Count() != 300 {
		t.Errorf("reconnect %v, handshake samples %d", res.Reconnect, res.Handshake.Count())
	}
	for _, want := range []string{"SIGKILL", "reconnected", "max/mean", "done in"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
