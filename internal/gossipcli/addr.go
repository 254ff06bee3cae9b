package gossipcli

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultPort is the gossip port of a member whose -gossip-bind names no
// port: serf's customary LAN port. Every member of a cluster uses the same
// gossip port, so a join address without a port means "that host, on our
// port".
const DefaultPort = 7946

// SplitHostPort parses a gossip address: "host:port", "[v6]:port", ":port"
// (empty host), or a bare "host", "v6" or "[v6]", which takes defPort.
// The port must be a number in 0..65535.
func SplitHostPort(s string, defPort int) (host string, port int, err error) {
	if s == "" {
		return "", 0, errors.New("empty address")
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a host name, an IPv4 address, or an IPv6 address with
		// or without brackets. Anything else with a colon is malformed.
		bare := s
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			bare = s[1 : len(s)-1]
			if net.ParseIP(bare) == nil {
				return "", 0, fmt.Errorf("address %q: %q is not an IPv6 address", s, bare)
			}
		}
		if strings.Contains(bare, ":") && net.ParseIP(bare) == nil {
			return "", 0, fmt.Errorf("address %q: want host, host:port or [ipv6]:port", s)
		}
		if strings.ContainsAny(bare, " \t[]/") {
			return "", 0, fmt.Errorf("address %q: not a host name or IP address", s)
		}
		return bare, defPort, nil
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("address %q: port %q is not a number in 0..65535", s, p)
	}
	if strings.ContainsAny(h, " \t[]/") {
		return "", 0, fmt.Errorf("address %q: not a host name or IP address", s)
	}
	return h, port, nil
}

// JoinAddr normalises a join address to host:port, giving it defPort when
// it has none. A join address needs a host.
func JoinAddr(s string, defPort int) (string, error) {
	h, p, err := SplitHostPort(strings.TrimSpace(s), defPort)
	if err != nil {
		return "", err
	}
	if h == "" {
		return "", fmt.Errorf("address %q: no host", s)
	}
	if p == 0 {
		return "", fmt.Errorf("address %q: port 0", s)
	}
	return net.JoinHostPort(h, strconv.Itoa(p)), nil
}
