package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// AuthError is a non-2xx answer from the auth service.
type AuthError struct {
	// Status is the HTTP status code: 401 bad credentials, 429 rate limited,
	// 503 no node with room, ...
	Status int
	// Code and Message come from the wire.Error body, when there was one.
	Code    string
	Message string
	// RetryAfter is the server's Retry-After, or 0 when it sent none.
	RetryAfter time.Duration
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("wsdirect auth: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Temporary reports whether asking again later may succeed: rate limiting
// and server-side trouble are temporary, bad credentials are not.
func (e *AuthError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Status == http.StatusRequestTimeout
}

// NodeError is a node refusing the WebSocket upgrade with an HTTP answer:
// 401/403 for a rejected token, 503 when the node is full or draining.
type NodeError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("wsdirect node: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// CloseError reports a connection that the server closed with a code that
// says not to reconnect (see wire.ShouldReconnect).
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wsdirect: closed by server with code %d %q", e.Code, e.Text)
}

// ErrNotConnected is returned by Managed.Send while there is no live
// connection.
var ErrNotConnected = errors.New("wsdirect: not connected")

// parseRetryAfter reads a Retry-After header in its delay-seconds form or
// its HTTP-date form. Garbage reads as 0, because the header is only a hint.
func parseRetryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
