package srcbind

import (
	"syscall"

	"golang.org/x/sys/unix"
)

type syscallRawConn = syscall.RawConn

const wantOption = 1

func bindNoPortOption(rc syscall.RawConn) (int, error) {
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT)
	}); err != nil {
		return 0, err
	}
	return v, gerr
}
