package node

import (
	"net/http"
	"testing"
)

// TestSetAdminToken: the drain endpoint follows a reloaded token; an empty
// one is refused and the old token stays.
func TestSetAdminToken(t *testing.T) {
	f := newFixture(t, nil) // token "admin-secret"
	authorized := func(tok string) bool {
		req, _ := http.NewRequest(http.MethodPost, "/admin/drain", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return f.node.adminAuthorized(req)
	}
	if !authorized("admin-secret") {
		t.Fatal("initial token refused")
	}
	if err := f.node.SetAdminToken("rotated"); err != nil {
		t.Fatal(err)
	}
	if authorized("admin-secret") || !authorized("rotated") {
		t.Error("the endpoint does not follow the new token")
	}
	if err := f.node.SetAdminToken(""); err == nil || !authorized("rotated") {
		t.Errorf("empty token: %v", err)
	}
}
