package localcloud

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nat is the 1:1 NAT between instances' public and private addresses. On EC2 the internet
// gateway rewrites a public (or Elastic) IP to the private IP it maps to, for every port; a
// process bound to its private address is thereby reachable at the public one. Here each
// public address is a loopback address too, and a forwarder listens on public:port for every
// port some process listens on at the mapped private address, found by a sock_diag scan of
// listening sockets. Forwarded connections come from the client's own address (bound with
// IP_BIND_ADDRESS_NO_PORT), so the instance sees the real client IP as behind EC2's NAT.
type nat struct {
	log      *slog.Logger
	interval time.Duration

	mu     sync.Mutex
	rules  map[netip.Addr]netip.Addr // public -> private
	expect map[string][]netip.AddrPort
	fwds   map[netip.AddrPort]*forwarder
	kick   chan struct{}
}

func newNAT(log *slog.Logger, interval time.Duration) *nat {
	return &nat{
		log: log, interval: interval,
		rules:  map[netip.Addr]netip.Addr{},
		expect: map[string][]netip.AddrPort{},
		fwds:   map[netip.AddrPort]*forwarder{},
		kick:   make(chan struct{}, 1),
	}
}

// setRules replaces the public-to-private mapping; the next scan (started at once) opens and
// closes forwarders to match.
func (n *nat) setRules(rules map[netip.Addr]netip.Addr) {
	n.mu.Lock()
	n.rules = rules
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// expectListeners records the private addresses a unit will listen on (its adapted binds), so
// their public side forwards from the moment the unit starts rather than from the next scan:
// a client told about a node must never find its public address closed while the node
// listens. nil forgets the unit's addresses.
func (n *nat) expectListeners(unit string, addrs []netip.AddrPort) {
	n.mu.Lock()
	if len(addrs) == 0 {
		delete(n.expect, unit)
	} else {
		n.expect[unit] = addrs
	}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Rules returns a copy of the current mapping.
func (n *nat) Rules() map[netip.Addr]netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[netip.Addr]netip.Addr, len(n.rules))
	for k, v := range n.rules {
		out[k] = v
	}
	return out
}

// run scans until ctx ends, then closes every forwarder.
func (n *nat) run(ctx context.Context) {
	t := time.NewTicker(n.interval)
	defer t.Stop()
	for {
		if err := n.scan(); err != nil {
			n.log.Warn("nat: scan", "err", err)
		}
		select {
		case <-ctx.Done():
			n.mu.Lock()
			for k, f := range n.fwds {
				f.close()
				delete(n.fwds, k)
			}
			n.mu.Unlock()
			return
		case <-t.C:
		case <-n.kick:
		}
	}
}

// scan opens a forwarder for each (public, port) whose private address has a listener on
// port (found, or expected from a unit's adapted binds), and closes the forwarders that no
// longer have one.
func (n *nat) scan() error {
	listeners, err := tcpListeners()
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	byPriv := map[netip.Addr][]netip.Addr{}
	for pub, priv := range n.rules {
		byPriv[priv] = append(byPriv[priv], pub)
	}
	want := map[netip.AddrPort]netip.AddrPort{}
	for _, addrs := range n.expect {
		listeners = append(listeners, addrs...)
	}
	for _, l := range listeners {
		for _, pub := range byPriv[l.Addr()] {
			want[netip.AddrPortFrom(pub, l.Port())] = l
		}
	}
	for k, f := range n.fwds {
		if to, ok := want[k]; !ok || to != f.to {
			f.close()
			delete(n.fwds, k)
		}
	}
	for from, to := range want {
		if _, ok := n.fwds[from]; ok {
			continue
		}
		f, err := newForwarder(from, to, n.log)
		if err != nil {
			n.log.Warn("nat: forward", "from", from, "to", to, "err", err)
			continue
		}
		n.fwds[from] = f
	}
	return nil
}

// forwarding reports whether public:port forwards now, and to where.
func (n *nat) forwarding(from netip.AddrPort) (netip.AddrPort, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, ok := n.fwds[from]
	if !ok {
		return netip.AddrPort{}, false
	}
	return f.to, true
}

// forwarder accepts on one public address:port and relays each connection to the private one.
type forwarder struct {
	from, to netip.AddrPort
	ln       net.Listener
	log      *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newForwarder(from, to netip.AddrPort, log *slog.Logger) (*forwarder, error) {
	ln, err := net.Listen("tcp", from.String())
	if err != nil {
		return nil, err
	}
	f := &forwarder{from: from, to: to, ln: ln, log: log, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *forwarder) accept() {
	defer f.wg.Done()
	var backoff time.Duration
	for {
		c, err := f.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors, say: wait and go on, as net/http's Serve does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			f.log.Warn("nat: accept", "from", f.from, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		f.wg.Add(1)
		go f.relay(c.(*net.TCPConn))
	}
}

// relayBuffer is the copy buffer of each direction of a relayed connection. Small, because an
// idle WebSocket holds its two buffers while it waits; WebSocket frames of chat-like traffic
// fit in one read.
const relayBuffer = 4 << 10

// relay connects to the private address from the client's address and copies both ways
// through a buffer. It does not let io.Copy splice: a splice holds a pipe (two descriptors)
// per direction while it waits, which triples the descriptors an idle connection costs
// (6 instead of 2: 3,000 connections would need 18,000 of a 20,000 limit).
func (f *forwarder) relay(client *net.TCPConn) {
	defer f.wg.Done()
	src := client.RemoteAddr().(*net.TCPAddr).IP
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second, Control: bindNoPort}
	c, err := d.Dial("tcp", f.to.String())
	if err != nil {
		// Nothing listens any more (the process is gone): reset, as the instance's kernel would.
		_ = client.SetLinger(0)
		client.Close()
		return
	}
	server := c.(*net.TCPConn)
	if !f.track(client, server) {
		client.Close()
		server.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src *net.TCPConn) {
		_, _ = io.CopyBuffer(writerOnly{dst}, readerOnly{src}, make([]byte, relayBuffer))
		_ = dst.CloseWrite()
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
	f.untrack(client, server)
	client.Close()
	server.Close()
}

// writerOnly and readerOnly hide TCPConn's ReadFrom and WriteTo, so io.CopyBuffer copies
// through its buffer instead of splicing.
type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

func (f *forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		delete(f.conns, c)
	}
}

// close stops accepting and cuts the relayed connections (the mapping is gone, as when an
// Elastic IP moves away).
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}

// bindNoPort is a net.Dialer.Control that sets IP_BIND_ADDRESS_NO_PORT: with a source address
// bound, the port is picked at connect time per destination, so thousands of relayed
// connections from one client address do not exhaust its ports.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
