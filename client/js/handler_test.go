package jsclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerServesPageAndModule(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"api":"`+r.URL.Path+`"}`)
	})
	srv := httptest.NewServer(WithDemo(api))
	defer srv.Close()

	cases := []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/demo/", 200, "text/html; charset=utf-8", `<script type="module" src="demo.js">`},
		{"GET", "/demo/index.html", 200, "text/html; charset=utf-8", "<title>wsdirect demo</title>"},
		{"GET", "/demo/wsdirect.js", 200, "text/javascript; charset=utf-8", "export function connect("},
		{"GET", "/demo/demo.js", 200, "text/javascript; charset=utf-8", "from './wsdirect.js'"},
		{"HEAD", "/demo/wsdirect.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/demo/handler.go", 404, "", ""},
		// Cleaned to /go.mod by the mux: the API answers, no file leaks.
		{"GET", "/demo/../go.mod", 200, "application/json", `{"api":"/go.mod"}`},
		{"GET", "/demo/%2e%2e/handler.go", 404, "", ""},
		{"GET", "/demo/nope.js", 404, "", ""},
		{"POST", "/demo/", 405, "", ""},
		{"POST", "/v1/connect", 200, "application/json", `{"api":"/v1/connect"}`},
		{"GET", "/healthz", 200, "application/json", `{"api":"/healthz"}`},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, srv.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, res.StatusCode, c.status)
			continue
		}
		if c.status != 200 {
			continue
		}
		if got := res.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", c.method, c.path, got, c.ctype)
		}
		if strings.HasPrefix(c.ctype, "text/") && (res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff") {
			t.Errorf("%s %s: security headers missing: %v", c.method, c.path, res.Header)
		}
		if !strings.Contains(string(body), c.body) {
			t.Errorf("%s %s: body lacks %q", c.method, c.path, c.body)
		}
		if c.method == "HEAD" && len(body) != 0 {
			t.Errorf("HEAD %s: got a body", c.path)
		}
	}
}

func TestFSHoldsTheSources(t *testing.T) {
	for _, name := range []string{"wsdirect.js", "demo.html", "demo.js"} {
		data, err := FS().(interface{ ReadFile(string) ([]byte, error) }).ReadFile(name)
		if err != nil || len(data) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(data))
		}
	}
}
