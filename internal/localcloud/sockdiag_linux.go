package localcloud

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inet_diag (linux/inet_diag.h): a SOCK_DIAG_BY_FAMILY dump request for one address family
// and protocol, filtered by TCP state in the kernel, so only listening sockets come back.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	tcpListen        = 10 // TCP_LISTEN
	inetDiagReqLen   = 56 // sizeof(struct inet_diag_req_v2)
	inetDiagMsgLen   = 72 // sizeof(struct inet_diag_msg)
)

// tcpListeners returns the local addresses of every IPv4 TCP socket in LISTEN state in this
// network namespace.
func tcpListeners() ([]netip.AddrPort, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)

	req := make([]byte, unix.NLMSG_HDRLEN+inetDiagReqLen)
	hdr := (*unix.NlMsghdr)(unsafe.Pointer(&req[0]))
	hdr.Len = uint32(len(req))
	hdr.Type = sockDiagByFamily
	hdr.Flags = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
	hdr.Seq = 1
	body := req[unix.NLMSG_HDRLEN:]
	body[0] = unix.AF_INET
	body[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(body[4:8], 1<<tcpListen)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag send: %w", err)
	}

	var out []netip.AddrPort
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("sock_diag receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sock_diag parse: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
						return nil, fmt.Errorf("sock_diag: %w", unix.Errno(-errno))
					}
				}
				return out, nil
			case sockDiagByFamily:
				if len(m.Data) < inetDiagMsgLen || m.Data[0] != unix.AF_INET {
					continue
				}
				// inet_diag_msg: family, state, timer, retrans, then inet_diag_sockid with
				// the source port (big endian) at 4 and the source address at 8.
				port := binary.BigEndian.Uint16(m.Data[4:6])
				addr := netip.AddrFrom4([4]byte(m.Data[8:12]))
				out = append(out, netip.AddrPortFrom(addr, port))
			}
		}
	}
}
