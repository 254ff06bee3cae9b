package authsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// DefaultCallbackTimeout bounds one call to the credentials callback when
// NewHTTPCallback is given no client.
const DefaultCallbackTimeout = 5 * time.Second

// maxCallbackResponse bounds how much of the callback's answer is read.
const maxCallbackResponse = 64 << 10

// HTTPCallback delegates the credential check to an existing auth endpoint.
// It POSTs {"username":..,"password":..} as JSON, forwarding the client's
// Authorization header, and reads the answer:
//   - 2xx with JSON {"user":"..."} or {"sub":"..."}: authenticated as that
//     user (falling back to the request's username when both are empty);
//   - 401 or 403: ErrInvalidCredentials;
//   - anything else, a timeout or a network error: ErrBackendUnavailable.
type HTTPCallback struct {
	url    string
	client *http.Client
}

// NewHTTPCallback returns a callback backend for url. With a nil client it
// uses one with DefaultCallbackTimeout.
func NewHTTPCallback(url string, client *http.Client) *HTTPCallback {
	if client == nil {
		client = &http.Client{Timeout: DefaultCallbackTimeout}
	}
	return &HTTPCallback{url: url, client: client}
}

// callbackAnswer is the JSON body of a successful callback answer.
type callbackAnswer struct {
	User string `json:"user"`
	Sub  string `json:"sub"`
}

// Authenticate implements Authenticator.
func (c *HTTPCallback) Authenticate(ctx context.Context, r *http.Request, req wire.ConnectRequest) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("%w: encode: %v", ErrBackendUnavailable, err)
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBackendUnavailable, err)
	}
	out.Header.Set("Content-Type", "application/json")
	out.Header.Set("Accept", "application/json")
	if r != nil {
		if a := r.Header.Get("Authorization"); a != "" {
			out.Header.Set("Authorization", a)
		}
	}
	resp, err := c.client.Do(out)
	if err != nil {
		// The error text may contain the URL but never the body, so no
		// password leaks into logs.
		return "", fmt.Errorf("%w: %v", ErrBackendUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCallbackResponse))
		return "", ErrInvalidCredentials
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCallbackResponse))
		return "", fmt.Errorf("%w: callback answered %s", ErrBackendUnavailable, resp.Status)
	}
	var ans callbackAnswer
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCallbackResponse))
	if err != nil {
		return "", fmt.Errorf("%w: read answer: %v", ErrBackendUnavailable, err)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &ans); err != nil {
			return "", fmt.Errorf("%w: callback answer is not JSON: %v", ErrBackendUnavailable, err)
		}
	}
	switch {
	case ans.User != "":
		return ans.User, nil
	case ans.Sub != "":
		return ans.Sub, nil
	case req.Username != "":
		return req.Username, nil
	}
	return "", fmt.Errorf("%w: callback accepted but named no user", ErrBackendUnavailable)
}
