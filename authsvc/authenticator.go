package authsvc

import (
	"context"
	"errors"
	"net/http"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// Authenticator checks one login. It returns the authenticated user name,
// ErrInvalidCredentials when the client is simply wrong, or another error
// (typically wrapping ErrBackendUnavailable) when the check itself failed.
//
// r is the client's request, for backends that read headers such as
// Authorization; its body has already been consumed into req.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, req wire.ConnectRequest) (user string, err error)
}

// ErrInvalidCredentials means the credentials were checked and are wrong.
// The server answers 401 and counts the attempt against the client's IP.
var ErrInvalidCredentials = errors.New("invalid credentials")

// ErrBackendUnavailable means the credentials could not be checked (callback
// down, timeout, unexpected answer). The server answers 502 rather than 401,
// so a client does not mistake an outage for a wrong password.
var ErrBackendUnavailable = errors.New("auth backend unavailable")
