package loadtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/srcbind"
)

// maxSourceIPs bounds a source range so a typo cannot allocate millions.
const maxSourceIPs = 4096

// ParseSourceIPs reads a list of local source addresses: comma-separated
// IPv4 addresses or inclusive ranges, e.g. "127.0.0.2-127.0.0.9,10.0.0.5".
// An empty string means "let the kernel choose" (nil).
func ParseSourceIPs(s string) ([]netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("source ip %q: %w", part, err)
		}
		if !first.Is4() {
			return nil, fmt.Errorf("source ip %q: only IPv4 is supported", part)
		}
		last := first
		if isRange {
			if last, err = netip.ParseAddr(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("source range %q: %w", part, err)
			}
			if !last.Is4() || last.Less(first) {
				return nil, fmt.Errorf("source range %q: end must be an IPv4 address not below the start", part)
			}
		}
		a, b := v4(first), v4(last)
		if int(b-a)+len(out) >= maxSourceIPs {
			return nil, fmt.Errorf("source ips: more than %d addresses", maxSourceIPs)
		}
		for x := a; ; x++ {
			var buf [4]byte
			binary.BigEndian.PutUint32(buf[:], x)
			out = append(out, netip.AddrFrom4(buf))
			if x == b {
				break
			}
		}
	}
	return out, nil
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// dialFrom returns a NetDialContext that binds src as the local address.
// The port is chosen at connect time (srcbind), so each source IP gets its
// own ephemeral range per destination node, and picking a port stays fast
// while tens of thousands are in use.
func dialFrom(src netip.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return srcbind.Dialer(src.AsSlice(), 0).DialContext
}
