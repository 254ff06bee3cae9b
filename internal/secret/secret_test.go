package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := Read("-admin-token-file", write("tok", "  s3cret\n\n"))
	if err != nil || got != "s3cret" {
		t.Fatalf("Read = %q, %v; want s3cret", got, err)
	}
	// Inner whitespace is part of the secret.
	if got, _ := Read("-x", write("inner", "a b\n")); got != "a b" {
		t.Errorf("inner space: %q", got)
	}
	for name, ref := range map[string]string{
		"empty file":   write("empty", " \n\t\n"),
		"missing file": filepath.Join(dir, "nope"),
		"no ref":       "",
		"a directory":  dir,
	} {
		_, err := Read("-admin-token-file", ref)
		if err == nil || !strings.HasPrefix(err.Error(), "-admin-token-file: ") {
			t.Errorf("%s: error %v, want one naming the flag", name, err)
		}
	}
	_, err = Read("-gossip-key-file", write("empty2", "\n"))
	if err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty: %v", err)
	}
}

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		eq        bool
	}{
		{"s3cret", "s3cret", true},
		{"s3cret", "s3cre", false},
		{"s3cre", "s3cret", false},
		{"S3cret", "s3cret", false},
		{"", "s3cret", false},
		{"", "", false}, // an unset secret matches nothing
		{"x", "", false},
	} {
		if got := Equal(tc.got, tc.want); got != tc.eq {
			t.Errorf("Equal(%q, %q) = %v, want %v", tc.got, tc.want, got, tc.eq)
		}
	}
}
