package compare

import (
	"bytes"
	"context"
	"image/png"
	"path/filepath"
	"testing"
	"time"
)

// TestRebalanceSmoke is the scale-out at CI size on the real binaries:
// 1,200 managed clients on three node processes, a fourth joins; the old
// nodes move it its share, no client moves twice or is lost, and the plot
// draws. The rate is low for the size (50/s for 300 moves) because auth
// places the last moves of a round by counts that lag by about a second
// (docs/design.md section 15): the fewer moves a second, the smaller that
// error next to a node's share.
func TestRebalanceSmoke(t *testing.T) {
	cfg := DefaultRebalanceConfig()
	cfg.Env = servers(t)
	cfg.Progress = testWriter{t}
	cfg.Clients = 1200
	cfg.Rate = 1000
	cfg.MaxRate = 50
	cfg.Quiet = 6 * time.Second
	cfg.Timeout = time.Minute
	// The nodes wait 5 s of steady totals (node.DefaultRebalanceConfig's
	// Settle) before a round: watch past one more.
	cfg.Watch = 7 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Rebalance(ctx, cfg)
	if res != nil {
		var buf bytes.Buffer
		res.WriteTable(&buf)
		t.Logf("\n%s", buf.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.NewNode != "node-4" || res.After["node-4"] == 0 {
		t.Fatalf("new node %q holds %d", res.NewNode, res.After[res.NewNode])
	}
	if res.AfterMaxMean > cfg.Goal || res.Lost != 0 || res.GaveUp != 0 || res.MovedTwice != 0 {
		t.Fatalf("after: max/mean %.3f, lost %d, gave up %d, moved twice %d", res.AfterMaxMean, res.Lost, res.GaveUp, res.MovedTwice)
	}
	if res.MovedRatio < 0.9 || res.MovedRatio > 1.2 {
		t.Fatalf("moved %d = %.2f× the least %.0f; want 0.9–1.2", res.Moved, res.MovedRatio, res.Minimum)
	}
	if res.PeakReconnectRate <= 0 || len(res.Series) < 10 {
		t.Fatalf("peak reconnect rate %.0f over %d samples", res.PeakReconnectRate, len(res.Series))
	}
	out := filepath.Join(t.TempDir(), "rebalance.png")
	if err := res.WritePNG(out); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := res.Plot(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1536 || b.Dy() != 672 {
		t.Fatalf("plot is %v", b)
	}
}
