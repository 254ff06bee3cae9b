package authsvc

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

func TestCredentialCache(t *testing.T) {
	ctx := context.Background()
	p := writeUsers(t, userLine(t, "alice", "s3cret"))
	u, err := NewUsersFile(p)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	u.cache.now = func() time.Time { return now }
	login := func(pass string) error {
		_, err := u.Authenticate(ctx, nil, wire.ConnectRequest{Username: "alice", Password: pass})
		return err
	}

	if err := login("wrong"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if u.cache.len() != 0 {
		t.Fatal("a failed login was cached")
	}
	if err := login("s3cret"); err != nil {
		t.Fatal(err)
	}
	if u.cache.len() != 1 {
		t.Fatal("a successful login was not cached")
	}
	if !u.cache.hit("alice", "s3cret", u.current().users["alice"].hash) {
		t.Fatal("no cache hit for the right password")
	}
	// With a cached entry, a wrong password still fails.
	if err := login("s3creT"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password after a cached success: %v", err)
	}

	// A password change on reload invalidates the cached check at once.
	if err := os.WriteFile(p, []byte(userLine(t, "alice", "new-pass")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := login("s3cret"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old password accepted after reload: %v", err)
	}
	if err := login("new-pass"); err != nil {
		t.Fatal(err)
	}

	// Entries expire.
	now = now.Add(DefaultCredentialCacheTTL + time.Second)
	if u.cache.hit("alice", "new-pass", u.current().users["alice"].hash) {
		t.Fatal("expired entry still hits")
	}
}

func TestCredentialCacheOffAndBounded(t *testing.T) {
	u, err := NewUsersFile(writeUsers(t, userLine(t, "alice", "pw")))
	if err != nil {
		t.Fatal(err)
	}
	u.SetCacheTTL(0)
	if _, err := u.Authenticate(context.Background(), nil, wire.ConnectRequest{Username: "alice", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if u.cache.len() != 0 {
		t.Fatal("cache used while turned off")
	}

	c := newCredCache(time.Minute, time.Hour, 10)
	for i := 0; i < 50; i++ {
		c.store(string(rune('a'+i)), "pw", []byte("h"))
	}
	if c.len() > 10 {
		t.Fatalf("cache grew to %d entries, bound is 10", c.len())
	}
}

// BenchmarkUsersFileLogin compares a repeated login with and without the
// cache, side by side in one run, at bcrypt's default cost.
func BenchmarkUsersFileLogin(b *testing.B) {
	line, err := HashPassword("alice", "s3cret", bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	p := b.TempDir() + "/users"
	if err := os.WriteFile(p, []byte(line+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, ttl := range []time.Duration{0, DefaultCredentialCacheTTL} {
		name := "cache=off"
		if ttl > 0 {
			name = "cache=on"
		}
		b.Run(name, func(b *testing.B) {
			u, err := NewUsersFile(p)
			if err != nil {
				b.Fatal(err)
			}
			u.SetCacheTTL(ttl)
			req := wire.ConnectRequest{Username: "alice", Password: "s3cret"}
			for i := 0; i < b.N; i++ {
				if _, err := u.Authenticate(context.Background(), nil, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
