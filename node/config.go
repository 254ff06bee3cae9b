package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Node. Start from DefaultConfig; New rejects invalid
// fields.
type Config struct {
	// Name is this node's id in the cluster and the audience its tokens are
	// minted for. It only labels logs here; the Verifier enforces the
	// audience. Required.
	Name string

	// MaxConns is the connection cap. Upgrades beyond it are refused with
	// 503 and Retry-After. Must be > 0.
	MaxConns int

	// MaxConnsPerUser caps the open connections of one user (the token's
	// sub) on this node; one more is refused with 429 and the code
	// CodeTooManyConnections before the upgrade. It keeps one account from
	// holding a node's capacity: across the cluster a user holds at most
	// nodes * MaxConnsPerUser connections, and auth's per-user limit on
	// outstanding tokens bounds how fast it gets there. 0 means no limit
	// (load tests whose clients all share one user).
	MaxConnsPerUser int

	// ReadLimit is the largest message a client may send, in bytes. A larger
	// one closes the connection with 1009 (message too big). Must be > 0.
	ReadLimit int64

	// HandshakeTimeout bounds the whole opening handshake: reading the
	// request headers (http.Server.ReadHeaderTimeout in HTTPServer) and
	// writing the 101 response (Upgrader.HandshakeTimeout), plus dialing the
	// upstream when one is configured.
	HandshakeTimeout time.Duration

	// PingInterval is how often the shared pinger pings every connection.
	// Must be smaller than PongWait.
	PingInterval time.Duration

	// PongWait is how long a connection may stay silent (no pong, no
	// message) before it is considered dead and dropped.
	PongWait time.Duration

	// WriteWait bounds each write, including pings and close frames, so a
	// peer that stopped reading cannot block a writer forever.
	WriteWait time.Duration

	// CloseGrace is how long the node waits for the peer's answering close
	// frame after sending its own, before it drops the TCP connection.
	CloseGrace time.Duration

	// ReadBufferSize is gorilla's read buffer on each connection, at least
	// 128 bytes. It is held for the connection's whole life, but reads
	// arrive through wsframe, which holds a pooled buffer only while data
	// is waiting, so this one only has to parse frame headers: a larger
	// message is read in more chunks, which costs memory copies, not
	// system calls.
	ReadBufferSize int

	// TLSReadBufferSize replaces ReadBufferSize on connections that arrive
	// over TLS (wss://), at least 128 bytes. crypto/tls already holds each whole record it
	// decrypted, so this buffer only has to parse frame headers out of it:
	// reading a larger message in more chunks costs memory copies, not
	// system calls.
	TLSReadBufferSize int

	// WriteBufferSize is the size of the pooled write buffers, at least 256
	// bytes. A connection holds one only while it writes a message.
	WriteBufferSize int

	// WaitingReads gives every connection a goroutine waiting in its read,
	// instead of reading a connection only when the poller says it has data
	// (docs/design.md section 7). It costs about 6 KB more per idle
	// connection, and saves CPU per message on a node whose connections
	// are rarely silent: the poller hands each readable connection to a
	// worker goroutine, which costs a thread wake-up per message.
	WaitingReads bool

	// ReleaseMemory returns the memory a burst of connects or disconnects
	// left behind to the OS once the burst has passed (node/memrelease.go).
	ReleaseMemory ReleaseMemoryConfig

	// Upstream, when set, is a ws:// URL every client connection is relayed
	// to, frame for frame, with the user in the wire.UserHeader header. Empty
	// means the built-in echo application.
	Upstream string

	// DrainBatch is how many clients a drain closes per step, so that they
	// do not all come back to auth in the same instant.
	DrainBatch int

	// DrainInterval is the pause between drain steps; 0 means no pause.
	DrainInterval time.Duration

	// DrainDeadline bounds a whole drain; clients still connected then are
	// closed at once.
	DrainDeadline time.Duration

	// AdminToken authorizes POST /admin/drain (Authorization: Bearer ...).
	// Empty disables the admin endpoint (every call gets 401).
	AdminToken string

	// Rebalance moves clients from this node to nodes with fewer when the
	// cluster is uneven, e.g. after a node joined (docs/design.md section
	// 14).
	Rebalance RebalanceConfig

	// View is the cluster as this node sees it: every node's gossiped
	// count, cap and draining flag (a *cluster.Cluster). Rebalancing needs
	// it; nil means the node sees no cluster, and then Rebalance.Enabled
	// must be false. Name must be this node's member name in it.
	View View

	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger

	// Registry receives the node's metrics and is served on /metrics. Nil
	// means a fresh registry per Node (never the global one), so several
	// nodes can live in one process.
	Registry *prometheus.Registry
}

// DefaultConfig returns a Config with production defaults; the caller sets
// Name.
func DefaultConfig() *Config {
	return &Config{
		// 10,000 leaves headroom under a typical 20,000 open-files limit
		// for the node's other sockets and for upstream relays.
		MaxConns: 10000,
		// A person has a few tabs and devices; 100 leaves room for shared
		// accounts while no one account can fill a 10,000-connection node.
		MaxConnsPerUser: 100,
		// 64 KiB is plenty for chat-like traffic and bounds what one client
		// can make the node buffer.
		ReadLimit: 64 << 10,
		// Long enough for a slow mobile client, short enough that
		// half-open handshakes do not pile up.
		HandshakeTimeout: 10 * time.Second,
		// Pings every 30 s keep NAT and load-balancer idle timers (often
		// 60 s) from expiring; 75 s of silence allows one lost ping.
		PingInterval: 30 * time.Second,
		PongWait:     75 * time.Second,
		// 10 s for one write is generous on any working network.
		WriteWait: 10 * time.Second,
		// A client that got our close frame answers within a round trip.
		CloseGrace: 2 * time.Second,
		// gorilla's floor (a control frame's payload fits): measured 450 B
		// less per idle connection than 512 (docs/benchmarks.md). The read
		// limit, not the buffer, bounds message size.
		ReadBufferSize: 128,
		// Idle connections are the usual case: read on demand.
		WaitingReads: false,
		// gorilla's floor (a control frame's payload fits); measured 380 B
		// less per idle wss connection than 512 (docs/benchmarks.md).
		TLSReadBufferSize: 128,
		// Pooled, so the size costs memory only while writing.
		WriteBufferSize: 4096,
		// 500 clients every 100 ms is 5,000/s back to auth: a 10,000-client
		// node drains in about 2 s without a thundering herd.
		DrainBatch:    500,
		DrainInterval: 100 * time.Millisecond,
		// Must fit in the instance's termination grace period: the
		// cloud-init unit gives the whole stop this plus 30 s
		// (docs/design.md section 15).
		DrainDeadline: 30 * time.Second,
		Rebalance:     DefaultRebalanceConfig(),
		ReleaseMemory: DefaultReleaseMemoryConfig(),
	}
}

// validate reports the first problem with c.
func (c *Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("node: Name is required")
	case c.MaxConns <= 0:
		return fmt.Errorf("node: MaxConns must be > 0, got %d", c.MaxConns)
	case c.MaxConnsPerUser < 0:
		return fmt.Errorf("node: MaxConnsPerUser must be >= 0 (0: no limit), got %d", c.MaxConnsPerUser)
	case c.ReadLimit <= 0:
		return fmt.Errorf("node: ReadLimit must be > 0, got %d", c.ReadLimit)
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("node: HandshakeTimeout must be > 0, got %s", c.HandshakeTimeout)
	case c.PingInterval <= 0:
		return fmt.Errorf("node: PingInterval must be > 0, got %s", c.PingInterval)
	case c.PongWait <= 0:
		return fmt.Errorf("node: PongWait must be > 0, got %s", c.PongWait)
	case c.PingInterval >= c.PongWait:
		return fmt.Errorf("node: PingInterval (%s) must be smaller than PongWait (%s)", c.PingInterval, c.PongWait)
	case c.WriteWait <= 0:
		return fmt.Errorf("node: WriteWait must be > 0, got %s", c.WriteWait)
	case c.CloseGrace <= 0:
		return fmt.Errorf("node: CloseGrace must be > 0, got %s", c.CloseGrace)
	case c.ReadBufferSize < 128:
		return fmt.Errorf("node: ReadBufferSize must be >= 128, got %d", c.ReadBufferSize)
	case c.TLSReadBufferSize < 128:
		return fmt.Errorf("node: TLSReadBufferSize must be >= 128, got %d", c.TLSReadBufferSize)
	case c.WriteBufferSize < 256:
		return fmt.Errorf("node: WriteBufferSize must be >= 256, got %d", c.WriteBufferSize)
	case c.DrainBatch <= 0:
		return fmt.Errorf("node: DrainBatch must be > 0, got %d", c.DrainBatch)
	case c.DrainInterval < 0:
		return fmt.Errorf("node: DrainInterval must not be negative, got %s", c.DrainInterval)
	case c.DrainDeadline <= 0:
		return fmt.Errorf("node: DrainDeadline must be > 0, got %s", c.DrainDeadline)
	case c.Rebalance.Enabled && c.View == nil:
		return errors.New("node: Rebalance.Enabled needs a View (the cluster, for the other nodes' counts); disable Rebalance without one")
	}
	if err := c.Rebalance.validate(); err != nil {
		return err
	}
	if err := c.ReleaseMemory.validate(); err != nil {
		return err
	}
	if c.Upstream != "" {
		u, err := url.Parse(c.Upstream)
		if err != nil {
			return fmt.Errorf("node: Upstream: %w", err)
		}
		if (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("node: Upstream must be a ws:// or wss:// URL, got %q", c.Upstream)
		}
	}
	return nil
}
