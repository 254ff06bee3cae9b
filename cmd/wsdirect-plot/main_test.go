package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/compare"
)

func TestBalanceCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "balance.png")
	var stdout, stderr bytes.Buffer
	code := run([]string{"balance", "-out", out, "-burst", "2000", "-checkpoints", "3", "-rates", "1000, 4000"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("no PNG written: %v", err)
	}
	if !strings.Contains(stdout.String(), "| p2c | ") || !strings.Contains(stdout.String(), "@ 4k/s") {
		t.Errorf("table missing from stdout:\n%s", stdout.String())
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"bogus"},
		{"balance", "-rates", "fast"},
		{"balance", "-rates", ""},
		{"balance", "-nodes", "0"},
		{"balance", "extra"},
		{"rebalance"},
		{"rebalance", "-in", "/nonexistent/result.json"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		} else if stderr.Len() == 0 {
			t.Errorf("%q: no message on stderr", args)
		}
	}
}

// TestRebalanceCommand draws a saved result: a small scale-out series.
func TestRebalanceCommand(t *testing.T) {
	dir := t.TempDir()
	res := compare.RebalanceResult{Clients: 300, MaxRate: 30, Goal: 1.1, GoalSeconds: 60, BalancedSeconds: 2,
		Before: map[string]int{"node-1": 100, "node-2": 100, "node-3": 100}, NewNode: "node-4"}
	for i := 0; i <= 20; i++ {
		moved := min(i*5, 75)
		res.Series = append(res.Series, compare.RebalanceSample{
			T: float64(i) * 0.2, Connected: 300, Connects: int64(300 + moved), Moved: int64(moved), AuthRebalance: float64(moved),
			Nodes: map[string]int{"node-1": 100 - moved/3, "node-2": 100 - moved/3, "node-3": 100 - moved/3, "node-4": moved},
		})
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.png")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"rebalance", "-in", in, "-out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("no PNG written: %v", err)
	}
	if !strings.Contains(stdout.String(), "scale-out") {
		t.Errorf("table missing from stdout:\n%s", stdout.String())
	}
}
