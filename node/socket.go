package node

import (
	"net"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/readiness"
)

// Listener wraps the TCP listener a node serves wss:// on, under
// crypto/tls (tls.NewListener(node.Listener(ln), conf)). crypto/tls reads
// the socket in its own way, so without this the node cannot tell when a
// read has emptied the socket, and re-arms each wss connection with a
// system call per message (docs/design.md section 7); with it, wss
// connections are read like ws ones. Connections that are not TCP pass
// through unchanged.
func Listener(ln net.Listener) net.Listener { return socketListener{ln} }

type socketListener struct{ net.Listener }

func (l socketListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		return &socket{TCPConn: tc}, nil
	}
	return c, err
}

// socket is a TCP connection under crypto/tls. Only the connection's one
// reader (crypto/tls, under its read lock, on the leg's reading goroutine)
// touches short and nowait.
type socket struct {
	*net.TCPConn
	// short: the last read returned less than it had room for, so the
	// socket was empty then.
	short bool
	// nowait: reads return readiness.ErrWouldBlock instead of waiting. Set only
	// around the leg's own reads, never while gorilla reads: crypto/tls
	// keeps what it had and reads on later (the error is temporary), but
	// gorilla would fail the connection.
	nowait bool
}

func (s *socket) Read(p []byte) (int, error) {
	var n int
	var err error
	if s.nowait {
		n, err = readiness.ReadNow(s.TCPConn, p)
	} else {
		n, err = s.TCPConn.Read(p)
	}
	s.short = n < len(p)
	return n, err
}
