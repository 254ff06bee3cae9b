package srcbind

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Control is a net.Dialer.Control that sets IP_BIND_ADDRESS_NO_PORT.
func Control(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
