package srcbind

import (
	"net"
	"time"
)

// Dialer returns a dialer that binds src as the local address (any port) and
// defers the port choice to connect time where the platform allows it.
func Dialer(src net.IP, timeout time.Duration) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: timeout, Control: Control}
}
