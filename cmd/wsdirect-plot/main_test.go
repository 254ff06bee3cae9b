package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		} else if stderr.Len() == 0 {
			t.Errorf("%q: no message on stderr", args)
		}
	}
}
