package authsvc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

func writeUsers(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func userLine(t *testing.T, user, pass string) string {
	t.Helper()
	l, err := HashPassword(user, pass, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestUsersFile(t *testing.T) {
	alice := userLine(t, "alice", "s3cret")
	// htpasswd -B writes $2y$; x/crypto/bcrypt reads it the same.
	bob := strings.Replace(userLine(t, "bob", "hunter2"), "$2a$", "$2y$", 1)
	p := writeUsers(t, "# users", "", "  "+alice+"  ", bob)
	u, err := NewUsersFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 {
		t.Fatalf("Len = %d, want 2", u.Len())
	}
	ctx := context.Background()
	for _, tc := range []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "s3cret", true},
		{"bob", "hunter2", true},
		{"alice", "wrong", false},
		{"alice", "", false},
		{"carol", "s3cret", false},
		{"", "", false},
		{"alice", strings.Repeat("x", 100), false},
	} {
		got, err := u.Authenticate(ctx, nil, wire.ConnectRequest{Username: tc.user, Password: tc.pass})
		if tc.ok && (err != nil || got != tc.user) {
			t.Errorf("%s/%s: got %q, %v; want ok", tc.user, tc.pass, got, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s/%s: got %q, %v; want ErrInvalidCredentials", tc.user, tc.pass, got, err)
		}
	}

	// Reload picks up changes; a broken edit keeps the old table.
	if err := os.WriteFile(p, []byte(userLine(t, "carol", "pw")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Authenticate(ctx, nil, wire.ConnectRequest{Username: "carol", Password: "pw"}); err != nil {
		t.Errorf("carol after reload: %v", err)
	}
	if _, err := u.Authenticate(ctx, nil, wire.ConnectRequest{Username: "alice", Password: "s3cret"}); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("alice after reload: %v, want removed", err)
	}
	if err := os.WriteFile(p, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("Reload of a broken file: %v, want a line-1 error", err)
	}
	if _, err := u.Authenticate(ctx, nil, wire.ConnectRequest{Username: "carol", Password: "pw"}); err != nil {
		t.Errorf("carol after failed reload: %v", err)
	}
}

func TestParseUsersErrors(t *testing.T) {
	good := "$2a$04$" + strings.Repeat("a", 53)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"no colon", "# c\nalice\n", "line 2: want \"user:bcrypthash\""},
		{"empty user", ":" + good, "line 1: empty user name"},
		{"md5", "alice:$apr1$abc$def", "line 1: user \"alice\": not a bcrypt hash"},
		{"sha1", "alice:{SHA}abcdef", "not a bcrypt hash"},
		{"plain", "alice:secret", "not a bcrypt hash"},
		{"short", "alice:$2a$04$abc", "bcrypt hash has 10 characters, want 60"},
		{"bad cost", "alice:$2a$99$" + strings.Repeat("a", 53), "cost 99"},
		{"dup", "alice:" + good + "\nalice:" + good, "line 2: user \"alice\" listed twice"},
		{"space", "al ice:" + good, "white space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseUsers([]byte(tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := NewUsersFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
	if users, cost, err := ParseUsers([]byte("\n# only comments\n")); err != nil || len(users) != 0 || cost != bcrypt.DefaultCost {
		t.Errorf("empty file: %v %d %v", users, cost, err)
	}
}

func TestHashPassword(t *testing.T) {
	l, err := HashPassword("alice", "pw", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users, _, err := ParseUsers([]byte(l))
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword(users["alice"], []byte("pw")) != nil {
		t.Error("hash does not verify")
	}
	for _, bad := range [][3]any{{"", "pw", 0}, {"a:b", "pw", 0}, {"alice", "", 0}, {"alice", "pw", 3}, {"alice", strings.Repeat("p", 73), 0}} {
		if _, err := HashPassword(bad[0].(string), bad[1].(string), bad[2].(int)); err == nil {
			t.Errorf("HashPassword(%q, %d bytes, %d): no error", bad[0], len(bad[1].(string)), bad[2])
		}
	}
}
