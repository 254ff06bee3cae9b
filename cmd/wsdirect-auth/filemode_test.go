package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/authsvc"
)

// TestToolFileModes: the secret files the tools write (keygen's signing.key
// and gossip.key, hash-password -o's users file) are 0600 whatever the
// umask: neither a permissive one (0) nor one that takes the owner's write
// bit away (0277) changes that. The umask is process-wide, so this test is
// not parallel.
func TestToolFileModes(t *testing.T) {
	for _, mask := range []int{0, 0o022, 0o277} {
		old := syscall.Umask(mask)
		dir := filepath.Join(t.TempDir(), "keys")
		code, _, errs := run(t, "", "keygen", "-out", dir)
		users := filepath.Join(dir, "users")
		code2, _, errs2 := run(t, "s3cret\n", "hash-password", "-user", "alice", "-cost", "4", "-o", users)
		syscall.Umask(old)
		if code != 0 || code2 != 0 {
			t.Fatalf("umask %#o: keygen %d %s; hash-password %d %s", mask, code, errs, code2, errs2)
		}
		for _, name := range []string{signingKeyFile, gossipKeyFile, "users"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("umask %#o: %s has mode %#o, want 0600", mask, name, fi.Mode().Perm())
			}
		}
	}
}

// TestHashPasswordToFile: -o appends to a users file, tightens an existing
// file's mode to 0600, refuses a user already listed and a file that does
// not parse, and the result loads.
func TestHashPasswordToFile(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	// An existing file, left world-readable by a shell redirect, without a
	// final newline.
	line, err := authsvc.HashPassword("carol", "pw-carol", 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(users, []byte("# users\n"+line), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if code, _, errs := run(t, "pw-"+u+"\n", "hash-password", "-user", u, "-cost", "4", "-o", users); code != 0 {
			t.Fatalf("%s: %d %s", u, code, errs)
		}
	}
	if fi, _ := os.Stat(users); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %#o after -o, want 0600", fi.Mode().Perm())
	}
	uf, err := authsvc.NewUsersFile(users)
	if err != nil {
		t.Fatal(err)
	}
	if uf.Len() != 3 {
		t.Errorf("%d users, want carol, alice and bob", uf.Len())
	}
	before, _ := os.ReadFile(users)
	if code, _, errs := run(t, "other\n", "hash-password", "-user", "alice", "-cost", "4", "-o", users); code == 0 || !strings.Contains(errs, "already lists") {
		t.Errorf("a second alice: %d %q", code, errs)
	}
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("not a users file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, "pw\n", "hash-password", "-user", "dave", "-cost", "4", "-o", broken); code == 0 || !strings.Contains(errs, "line 1") {
		t.Errorf("a broken file: %d %q", code, errs)
	}
	if after, _ := os.ReadFile(users); string(after) != string(before) {
		t.Error("a refused -o changed the file")
	}
	// A password bcrypt cannot hold is refused.
	if code, _, errs := run(t, "s3cret\x00s3cret\n", "hash-password", "-user", "erin", "-cost", "4"); code == 0 || !strings.Contains(errs, "NUL") {
		t.Errorf("a password with a NUL: %d %q", code, errs)
	}
}
