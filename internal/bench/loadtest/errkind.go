package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
)

// ErrorKind names the kind of a failed connect for the report: which step
// failed and how. Port exhaustion (EADDRNOTAVAIL) and the file limit
// (EMFILE) get their own kinds, since they are what scale runs hit.
func ErrorKind(err error) string {
	var ae *client.AuthError
	if errors.As(err, &ae) {
		return fmt.Sprintf("auth_%d", ae.Status)
	}
	var ne *client.NodeError
	if errors.As(err, &ne) {
		if ne.Code != "" {
			return fmt.Sprintf("node_%d_%s", ne.Status, ne.Code)
		}
		return fmt.Sprintf("node_%d", ne.Status)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "conn_reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "addr_not_available"
	case errors.Is(err, syscall.EADDRINUSE):
		return "addr_in_use"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_open_files"
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "net_" + oe.Op
	}
	return "other"
}
