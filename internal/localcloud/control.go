package localcloud

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// control serves the local cloud's own API under /localcloud/v1/:
//
//	GET  /localcloud/v1/info                          Info (endpoints, subnets, release)
//	GET  /localcloud/v1/status                        []InstanceStatus
//	POST /localcloud/v1/instances/{id}/kill[?unit=U]  fault injection (see Cloud.Kill)
//	GET  /localcloud/v1/instances/{id}/console        the instance's console log
//	PUT  /localcloud/v1/roles/{profile}/policy        an instance role's IAM policy (JSON body; see SetRolePolicy)
//	DELETE /localcloud/v1/roles/{profile}/policy      remove it: the role may do everything
func (c *Cloud) control(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/localcloud/v1/")
	switch {
	case path == "info" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, c.Info())
	case path == "status" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, c.Status())
	case strings.HasPrefix(path, "roles/") && strings.HasSuffix(path, "/policy") &&
		(r.Method == http.MethodPut || r.Method == http.MethodDelete):
		profile := strings.TrimSuffix(strings.TrimPrefix(path, "roles/"), "/policy")
		doc := ""
		if r.Method == http.MethodPut {
			raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			if doc = string(raw); doc == "" {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "empty policy; DELETE removes one"})
				return
			}
		}
		if err := c.SetRolePolicy(profile, doc); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"instance_profile": profile, "policy": doc != ""})
	case strings.HasPrefix(path, "instances/"):
		id, action, _ := strings.Cut(strings.TrimPrefix(path, "instances/"), "/")
		switch {
		case action == "kill" && r.Method == http.MethodPost:
			if err := c.Kill(id, r.URL.Query().Get("unit")); err != nil {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"killed": id, "unit": r.URL.Query().Get("unit")})
		case action == "console" && r.Method == http.MethodGet:
			if strings.ContainsAny(id, "/.") || id == "" {
				http.NotFound(w, r)
				return
			}
			raw, err := os.ReadFile(filepath.Join(c.cfg.WorkDir, "instances", id, "console.log"))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(raw)
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
