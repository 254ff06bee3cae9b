package jsclient

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is where WithDemo mounts Handler: the page is at /demo/, the
// module at /demo/wsdirect.js.
const Prefix = "/demo/"

// WithDemo serves the demo page and the module under Prefix, and passes
// every other request to next (the auth service's API):
//
//	hs := &http.Server{Handler: jsclient.WithDemo(authServer.Handler())}
//
// Served from the auth service's own origin, the page's POST /v1/connect
// is same-origin and needs no CORS.
func WithDemo(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Prefix, http.StripPrefix(strings.TrimSuffix(Prefix, "/"), Handler()))
	mux.Handle("/", next)
	return mux
}

//go:embed wsdirect.js demo.html demo.js
var files embed.FS

// FS is the embedded sources: wsdirect.js, demo.html and demo.js.
func FS() fs.FS { return files }

// contentSecurityPolicy keeps the demo page to its own scripts. connect-src
// must allow any http(s) origin (the auth URL field) and any ws(s) origin
// (nodes are on their own addresses).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; " +
	"connect-src 'self' http: https: ws: wss:; img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// routes maps a request path (after the prefix is stripped) to a file and
// its media type. Module scripts must be served as JavaScript or browsers
// refuse to run them.
var routes = map[string]struct{ name, ctype string }{
	"/":            {"demo.html", "text/html; charset=utf-8"},
	"/index.html":  {"demo.html", "text/html; charset=utf-8"},
	"/demo.html":   {"demo.html", "text/html; charset=utf-8"},
	"/demo.js":     {"demo.js", "text/javascript; charset=utf-8"},
	"/wsdirect.js": {"wsdirect.js", "text/javascript; charset=utf-8"},
}

// modTime is when the binary started: the files are embedded, so they
// cannot change while it runs, and a restart after an upgrade revalidates.
var modTime = time.Now()

// Handler serves the demo page at "/" and the module at "/wsdirect.js",
// relative to where it is mounted (strip the mount prefix, see Prefix). The
// page finds the auth service at its own origin unless the user types
// another auth URL. GET and HEAD only; anything else is 405, unknown paths
// 404.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "" {
			p = "/"
		}
		rt, ok := routes[path.Clean(p)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		data, err := files.ReadFile(rt.name)
		if err != nil { // cannot happen: the names are embedded above
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", rt.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		http.ServeContent(w, r, rt.name, modTime, bytes.NewReader(data))
	})
}
