package authsvc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

func TestHTTPCallback(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req wire.ConnectRequest
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		switch req.Username {
		case "alice":
			if req.Password != "pw" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"user":"alice@example"}`))
		case "sub":
			_, _ = w.Write([]byte(`{"sub":"user-42"}`))
		case "empty":
			w.WriteHeader(http.StatusNoContent)
		case "bearer":
			if r.Header.Get("Authorization") != "Bearer abc" {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			_, _ = w.Write([]byte(`{"user":"viaheader"}`))
		case "notjson":
			_, _ = w.Write([]byte(`<html>`))
		case "broken":
			w.WriteHeader(http.StatusInternalServerError)
		case "slow":
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	cb := NewHTTPCallback(srv.URL, &http.Client{Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	hdr := func(auth string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/v1/connect", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	for _, tc := range []struct {
		user, pass, auth string
		want             string
		wantErr          error
	}{
		{"alice", "pw", "", "alice@example", nil},
		{"alice", "bad", "", "", ErrInvalidCredentials},
		{"sub", "", "", "user-42", nil},
		{"empty", "", "", "empty", nil},
		{"bearer", "", "Bearer abc", "viaheader", nil},
		{"bearer", "", "Bearer nope", "", ErrInvalidCredentials},
		{"notjson", "", "", "", ErrBackendUnavailable},
		{"broken", "", "", "", ErrBackendUnavailable},
		{"slow", "", "", "", ErrBackendUnavailable},
	} {
		got, err := cb.Authenticate(ctx, hdr(tc.auth), wire.ConnectRequest{Username: tc.user, Password: tc.pass})
		if got != tc.want || (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.user, got, err, tc.want, tc.wantErr)
		}
		if errors.Is(err, ErrInvalidCredentials) && errors.Is(err, ErrBackendUnavailable) {
			t.Errorf("%s: error is both invalid and unavailable", tc.user)
		}
	}

	// Nobody listening: unavailable, not invalid.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	if _, err := NewHTTPCallback(dead.URL, nil).Authenticate(ctx, hdr(""), wire.ConnectRequest{Username: "a"}); !errors.Is(err, ErrBackendUnavailable) {
		t.Errorf("dead callback: %v", err)
	}
}
