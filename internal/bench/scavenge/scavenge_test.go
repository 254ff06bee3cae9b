package scavenge

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestScavengeOverSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	if err := Listen(path); err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{"stats", "scavenge"} {
		got, err := Request(path, req, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		if !strings.HasPrefix(got, "goroutines=") || !strings.Contains(got, " heap_inuse=") {
			t.Fatalf("%s answered %q", req, got)
		}
	}
	if _, err := Request(path, "bogus", 10*time.Second); err == nil || !strings.Contains(err.Error(), "unknown request") {
		t.Fatalf("bogus request: err %v, want unknown request", err)
	}
}

func TestSourceIsThisFile(t *testing.T) {
	if !strings.Contains(string(Source), "func ListenFromEnv()") {
		t.Fatal("Source does not hold scavenge.go")
	}
}
