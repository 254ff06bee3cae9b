package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// ManagedConfig tunes a Managed connection. Start from DefaultManagedConfig;
// NewManaged rejects invalid fields.
type ManagedConfig struct {
	// Options are passed to every Dial (HTTP client, WebSocket dialer, ...);
	// none means the package defaults.
	Options []Option

	// BackoffBase is the first retry window. Must be > 0.
	BackoffBase time.Duration
	// BackoffMax caps the retry window. Must be at least BackoffBase.
	BackoffMax time.Duration
	// ResetAfter: a connection that stayed up this long resets the backoff,
	// so a client that lost a node after an hour starts again at
	// BackoffBase. Must be > 0.
	ResetAfter time.Duration
	// ReadLimit caps an incoming message, in bytes. Must be > 0.
	ReadLimit int64
	// WriteTimeout bounds a Send without a context deadline. Must be > 0.
	WriteTimeout time.Duration

	// OnConnect, when set, runs after each successful connect, in the Run
	// goroutine.
	OnConnect func(resp *wire.ConnectResponse)
	// OnTiming, when set, gets the duration of the auth request and of the
	// WebSocket upgrade of each successful connect.
	OnTiming func(auth, upgrade time.Duration)
	// OnMessage, when set, runs for every message received, in the Run
	// goroutine; it must not block for long. data is only valid during the
	// call.
	OnMessage func(messageType int, data []byte)
	// OnDisconnect, when set, runs after a connection ends (code is the
	// close code, 1006 when the connection just broke) and after each
	// failed connect attempt (code 0, err says why).
	OnDisconnect func(code int, err error)

	// Rand and Sleep replace the jitter source and the sleep between
	// attempts (for tests); nil means math/rand/v2 and a timer. Sleep must
	// return early with ctx.Err() when ctx ends.
	Rand  func(n int64) int64
	Sleep func(ctx context.Context, d time.Duration) error
	// Now replaces the clock (for tests); nil means time.Now.
	Now func() time.Time
}

// DefaultManagedConfig returns the defaults. The browser client (client/js)
// uses the same backoff.
func DefaultManagedConfig() ManagedConfig {
	return ManagedConfig{
		// The first retry spreads clients over 100 ms: a lost node's
		// clients are back within a fraction of a second, yet auth does
		// not see them all at once.
		BackoffBase: 100 * time.Millisecond,
		// 30 s caps the wait of a client that keeps failing (auth down)
		// while keeping its retries cheap for the servers.
		BackoffMax: 30 * time.Second,
		// A connection that lasted 10 s was a success, not part of a
		// failure streak.
		ResetAfter: 10 * time.Second,
		// 1 MiB leaves room for application messages and still bounds
		// what a misbehaving server can make the client buffer.
		ReadLimit: 1 << 20,
		// 10 s for one write is generous on any working network.
		WriteTimeout: 10 * time.Second,
	}
}

// validate reports the first problem with c.
func (c *ManagedConfig) validate() error {
	switch {
	case c.BackoffBase <= 0:
		return fmt.Errorf("client: BackoffBase must be > 0, got %s", c.BackoffBase)
	case c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("client: BackoffMax (%s) must be at least BackoffBase (%s)", c.BackoffMax, c.BackoffBase)
	case c.ResetAfter <= 0:
		return fmt.Errorf("client: ResetAfter must be > 0, got %s", c.ResetAfter)
	case c.ReadLimit <= 0:
		return fmt.Errorf("client: ReadLimit must be > 0, got %d", c.ReadLimit)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("client: WriteTimeout must be > 0, got %s", c.WriteTimeout)
	}
	return nil
}

// Managed keeps one logical connection alive. Whenever the node goes away
// (a close code for which wire.ShouldReconnect is true, or a broken
// connection), drains, refuses the upgrade, or cannot be reached, it goes
// back to auth for a new node and a fresh token, after a full-jitter
// exponential backoff. It stops on a close code that says not to reconnect,
// on bad credentials, or when Run's context ends.
//
// A node that moves it to rebalance the cluster (wire.CloseRebalance) is
// handled like a drain, and the connect requests that follow, until one
// succeeds, say so (wire.ReasonRebalance): auth then places the client on
// the least loaded node, which will not move it again for a while.
type Managed struct {
	authURL string
	creds   Credentials
	cfg     ManagedConfig
	backoff Backoff

	mu     sync.Mutex // guards conn and node
	conn   *websocket.Conn
	node   string
	sendMu sync.Mutex // gorilla allows one concurrent writer
}

// NewManaged returns a Managed connection; call Run to start it. It uses
// cfg as given and returns an error naming the first invalid field.
func NewManaged(authURL string, creds Credentials, cfg ManagedConfig) (*Managed, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Managed{
		authURL: authURL,
		creds:   creds,
		cfg:     cfg,
		backoff: Backoff{Base: cfg.BackoffBase, Max: cfg.BackoffMax, Rand: cfg.Rand},
	}, nil
}

// Current reports the node serving the connection right now.
func (m *Managed) Current() (nodeID string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node, m.conn != nil
}

// Send writes one message on the current connection. It is safe to call
// from several goroutines. Without a live connection it returns
// ErrNotConnected; the message is not queued.
func (m *Managed) Send(ctx context.Context, messageType int, data []byte) error {
	m.mu.Lock()
	conn := m.conn
	m.mu.Unlock()
	if conn == nil {
		return ErrNotConnected
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = m.cfg.Now().Add(m.cfg.WriteTimeout)
	}
	m.sendMu.Lock()
	defer m.sendMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	_ = conn.SetWriteDeadline(deadline)
	return conn.WriteMessage(messageType, data)
}

// Run connects and keeps reconnecting until ctx ends (it then closes the
// connection with 1000 and returns ctx.Err()), the server closes with a
// code that says not to reconnect (*CloseError), or auth rejects the
// credentials (*AuthError). It reads messages in its own goroutine, so a
// Managed costs one goroutine.
func (m *Managed) Run(ctx context.Context) error {
	attempt := 0
	reason := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		floor, connectedFor, code, err := m.once(ctx, reason)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case code == wire.CloseRebalance:
			reason = wire.ReasonRebalance
		case code != 0:
			reason = "" // it connected; a failed attempt keeps the reason
		}
		var ce *CloseError
		if errors.As(err, &ce) {
			return err
		}
		var ae *AuthError
		if errors.As(err, &ae) && !ae.Temporary() {
			return err
		}
		if connectedFor >= m.cfg.ResetAfter {
			attempt = 0
		}
		d := m.backoff.Delay(attempt, floor)
		attempt++
		if err := m.cfg.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// once makes one connect attempt, with reason in the connect request, and
// when it succeeds serves the connection until it ends. It returns the
// Retry-After floor for the next delay, how long the connection was up, its
// close code (0 when the attempt failed before connecting), and why it
// ended.
func (m *Managed) once(ctx context.Context, reason string) (floor, up time.Duration, code int, err error) {
	start := m.cfg.Now()
	opts := m.cfg.Options
	if reason != "" {
		opts = append(opts[:len(opts):len(opts)], WithConnectReason(reason))
	}
	resp, err := Authorize(ctx, m.authURL, m.creds, opts...)
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			floor = ae.RetryAfter
		}
		m.disconnected(0, err)
		return floor, 0, 0, err
	}
	authDone := m.cfg.Now()
	conn, err := DialNode(ctx, resp, m.cfg.Options...)
	if err != nil {
		var ne *NodeError
		if errors.As(err, &ne) {
			floor = ne.RetryAfter
		}
		m.disconnected(0, err)
		return floor, 0, 0, err
	}
	connected := m.cfg.Now()
	if m.cfg.OnTiming != nil {
		m.cfg.OnTiming(authDone.Sub(start), connected.Sub(authDone))
	}
	conn.SetReadLimit(m.cfg.ReadLimit)
	m.mu.Lock()
	m.conn, m.node = conn, resp.NodeID
	m.mu.Unlock()
	if m.cfg.OnConnect != nil {
		m.cfg.OnConnect(resp)
	}

	// Unblock the read below when ctx ends; AfterFunc costs no goroutine
	// while it waits.
	stop := context.AfterFunc(ctx, func() {
		m.sendMu.Lock()
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		m.sendMu.Unlock()
		_ = conn.Close()
	})
	code, readErr := m.serve(conn)
	stop()

	m.mu.Lock()
	m.conn, m.node = nil, ""
	m.mu.Unlock()
	_ = conn.Close()
	up = m.cfg.Now().Sub(connected)
	m.disconnected(code, readErr)
	if ctx.Err() != nil {
		return 0, up, code, ctx.Err()
	}
	if !wire.ShouldReconnect(code) {
		var ce *websocket.CloseError
		text := ""
		if errors.As(readErr, &ce) {
			text = ce.Text
		}
		return 0, up, code, &CloseError{Code: code, Text: text}
	}
	return 0, up, code, readErr
}

// serve reads until the connection ends and returns its close code: the
// server's, or 1006 when the connection broke without a close frame.
func (m *Managed) serve(conn *websocket.Conn) (int, error) {
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, err
			}
			return websocket.CloseAbnormalClosure, err
		}
		if m.cfg.OnMessage != nil {
			m.cfg.OnMessage(mt, data)
		}
	}
}

func (m *Managed) disconnected(code int, err error) {
	if m.cfg.OnDisconnect != nil {
		m.cfg.OnDisconnect(code, err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
