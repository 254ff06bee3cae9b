package authsvc

import (
	"net/http"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// TestSetAdminToken: a reloaded token replaces the old one at once; an
// empty one is refused and the old token stays.
func TestSetAdminToken(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AdminToken = "first" })
	status := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, ts.url+wire.NodesPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status("first"); s != http.StatusOK {
		t.Fatalf("first token: %d", s)
	}
	if err := ts.SetAdminToken("second"); err != nil {
		t.Fatal(err)
	}
	if s1, s2 := status("first"), status("second"); s1 != http.StatusUnauthorized || s2 != http.StatusOK {
		t.Errorf("after the change: old %d, new %d", s1, s2)
	}
	if err := ts.SetAdminToken(""); err == nil {
		t.Error("empty token accepted")
	}
	if s := status("second"); s != http.StatusOK {
		t.Errorf("a refused change lost the token: %d", s)
	}
}

// TestUsersFileFrom: content from a function, read again on Reload; a
// failing read keeps the table.
func TestUsersFileFrom(t *testing.T) {
	alice, err := HashPassword("alice", "s3cret", 4)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := HashPassword("bob", "pa55word", 4)
	if err != nil {
		t.Fatal(err)
	}
	content, fail := alice+"\n", error(nil)
	u, err := NewUsersFileFrom("ssm:///wsdirect/prod/users", func() ([]byte, error) { return []byte(content), fail })
	if err != nil || u.Len() != 1 || u.Path() != "ssm:///wsdirect/prod/users" {
		t.Fatalf("NewUsersFileFrom: %v, %d users", err, u.Len())
	}
	content = alice + "\n" + bob + "\n"
	if err := u.Reload(); err != nil || u.Len() != 2 {
		t.Fatalf("Reload: %v, %d users", err, u.Len())
	}
	fail = http.ErrServerClosed // any error
	if err := u.Reload(); err == nil || u.Len() != 2 {
		t.Errorf("failed read: %v, %d users; want an error and the old table", err, u.Len())
	}
	fail, content = nil, "garbage"
	if err := u.Reload(); err == nil || u.Len() != 2 {
		t.Errorf("bad content: %v, %d users", err, u.Len())
	}
}
