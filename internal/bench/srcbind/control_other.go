//go:build !linux

package srcbind

import "syscall"

// Control does nothing here: the platform has no IP_BIND_ADDRESS_NO_PORT,
// so the port is reserved at bind time.
func Control(_, _ string, _ syscall.RawConn) error { return nil }
