package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/readiness"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/secret"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// Publisher receives the node's live state for the cluster. A
// *cluster.Cluster satisfies it.
type Publisher interface {
	// SetConns is called on every connect and disconnect; it must be cheap
	// (the cluster coalesces what it gossips).
	SetConns(n int)
	// SetDraining marks the node as taking no new assignments.
	SetDraining(bool) error
}

// readinessPublisher is optionally implemented by a Publisher (a
// *cluster.Cluster does) to take a node out of assignment while it is not
// ready, without calling that a drain.
type readinessPublisher interface {
	SetReady(bool) error
}

// retryAfterSeconds is what refused clients are told to wait. It is short:
// the client goes back to auth, which will usually pick another node.
const retryAfterSeconds = "1"

// userLimitRetryAfter is what a client over its per-user limit is told to
// wait: its other connections have to end first, which takes longer than a
// node becoming free.
const userLimitRetryAfter = "10"

// pollInterval paces the bounded waits in Drain and Close.
const pollInterval = 10 * time.Millisecond

// Node serves WebSocket clients. Create it with New.
type Node struct {
	conf     Config
	verifier *token.Verifier
	pub      Publisher
	admin    atomic.Pointer[string] // SetAdminToken
	log      *slog.Logger
	reg      *prometheus.Registry
	metrics  *metrics
	upgrader websocket.Upgrader
	// tlsUpgrader is upgrader with TLSReadBufferSize, for wss://.
	tlsUpgrader websocket.Upgrader
	dialer      *websocket.Dialer
	// poller starts a connection's read when it has data; nil where it is
	// unavailable (a goroutine then waits in each read).
	poller *readiness.Poller

	// slots counts reserved connections: handshakes in progress plus open
	// connections. It is what the cap is enforced on.
	slots atomic.Int64
	// highWater is the largest value slots ever reached (for tests and the
	// cap guarantee: it must never exceed MaxConns).
	highWater atomic.Int64
	// active counts open (upgraded, not yet finished) connections.
	active atomic.Int64
	// changes counts connections opened and closed, for the releaser.
	changes atomic.Uint64

	shards  [connShards]connShard
	nextIdx atomic.Uint32

	// users counts open connections per user when MaxConnsPerUser > 0.
	users userCounts

	// pubMu orders SetConns calls so the last published value is the
	// current one, even when connects and disconnects race.
	pubMu sync.Mutex

	// rbShard rotates the shard the rebalance takes its next client from;
	// stopRebalance ends the rebalance loop (on drain and close).
	rbShard       atomic.Uint32
	stopRebalance context.CancelFunc

	draining atomic.Bool
	closed   atomic.Bool
	// notReady holds why the node cannot serve (SetNotReady), or nil.
	notReady atomic.Pointer[string]
	// fresh holds, until the verifier's iat floor has passed, why auth
	// should send no client yet: every token minted before then is refused
	// (the restart rule, token.Verifier.RejectIssuedBefore). Nil after.
	fresh      atomic.Pointer[string]
	freshTimer *time.Timer
	// readyMu orders readiness publications; published is the readiness
	// last published (true until a change, as the cluster starts).
	readyMu   sync.Mutex
	published bool
	done      chan struct{} // closed by Close; stops the pinger
	closeOnce sync.Once
	drained   chan struct{} // closed when a drain has finished
	drainOnce sync.Once
}

// New returns a Node that verifies tokens with v and publishes its state to
// pub (which may be nil). It starts the shared pinger; call Close to stop it.
func New(conf *Config, v *token.Verifier, pub Publisher) (*Node, error) {
	if conf == nil {
		return nil, errors.New("node: nil Config")
	}
	if v == nil {
		return nil, errors.New("node: nil token.Verifier")
	}
	if v.IssuedAfter().IsZero() {
		// Without it a token used before a restart connects again after it:
		// the replay cache starts empty in every process.
		return nil, errors.New("node: the token.Verifier must refuse tokens issued before the node started (call Verifier.RejectIssuedBefore with the start time plus the clock-skew leeway)")
	}
	c := *conf
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	n := &Node{
		conf:     c,
		verifier: v,
		pub:      pub,
		log:      c.Logger.With("node", c.Name),
		reg:      c.Registry,
		done:     make(chan struct{}),
		drained:  make(chan struct{}),
	}
	n.admin.Store(&c.AdminToken)
	for i := range n.shards {
		n.shards[i].m = make(map[*conn]struct{})
	}
	n.users.init(c.MaxConnsPerUser)
	n.published = true
	m, err := newMetrics(c.Registry, func() float64 { return float64(n.active.Load()) })
	if err != nil {
		return nil, err
	}
	n.metrics = m
	pool := &sync.Pool{}
	n.upgrader = websocket.Upgrader{
		HandshakeTimeout: c.HandshakeTimeout,
		ReadBufferSize:   c.ReadBufferSize,
		WriteBufferSize:  c.WriteBufferSize,
		// One pool for all connections: an idle connection holds no write
		// buffer at all.
		WriteBufferPool: pool,
		Subprotocols:    []string{wire.Subprotocol},
		// Cross-origin is the normal case (a page on the app's origin
		// connects to a node's IP). The single-use token, not an ambient
		// cookie, is the credential, so cross-site hijacking gains nothing.
		CheckOrigin: func(*http.Request) bool { return true },
		Error:       n.upgradeError,
	}
	n.tlsUpgrader = n.upgrader
	n.tlsUpgrader.ReadBufferSize = c.TLSReadBufferSize
	if c.Upstream != "" {
		n.dialer = newDialer(&c, pool)
	}
	if !c.WaitingReads {
		if p, err := sharedPoller(); err != nil {
			// Not Linux: each connection keeps a goroutine waiting in its
			// read.
			n.log.Info("idle connections keep a waiting goroutine", "err", err)
		} else {
			n.poller = p
			if err := registerPollerMetrics(c.Registry, p); err != nil {
				return nil, err
			}
		}
	}
	go n.pinger()
	if c.ReleaseMemory.After > 0 {
		go n.releaser()
	}
	rctx, stop := context.WithCancel(context.Background())
	n.stopRebalance = stop
	if c.Rebalance.Enabled {
		go n.rebalancer(rctx)
	}
	// Until the iat floor has passed every token auth mints for this node
	// is refused, so the node says it is not ready rather than have auth
	// send it clients that would be turned away (401 issued_before_start).
	// A freshly started or restarted node waits out the clock-skew leeway
	// this way; with clocks further apart than the leeway its first clients
	// may still be refused, and fetch a new token.
	if floor := v.IssuedAfter(); time.Until(floor) > 0 {
		reason := fmt.Sprintf("started moments ago: tokens issued before %s are refused (restart rule)", floor.UTC().Format(time.RFC3339Nano))
		n.fresh.Store(&reason)
		n.publishReadiness()
		n.freshTimer = time.AfterFunc(time.Until(floor), func() {
			n.fresh.Store(nil)
			n.publishReadiness()
		})
	}
	return n, nil
}

// Handler serves /ws, /healthz, /readyz, /metrics and POST /admin/drain.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(wire.WSPath, n.handleWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if r := n.NotReadyReason(); r != "" {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+r+"\n")
			return
		}
		if !n.Ready() {
			writeText(w, http.StatusServiceUnavailable, "draining\n")
			return
		}
		writeText(w, http.StatusOK, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg}))
	mux.HandleFunc("/admin/drain", n.handleAdminDrain)
	return mux
}

// Conns is the number of open WebSocket connections.
func (n *Node) Conns() int { return int(n.active.Load()) }

// HighWater is the largest number of connection slots (open connections
// plus handshakes in progress) ever held at once. It never exceeds MaxConns.
func (n *Node) HighWater() int { return int(n.highWater.Load()) }

// Ready reports whether the node accepts new connections: not draining,
// not closed, not marked not ready, and past the iat floor of its tokens.
func (n *Node) Ready() bool {
	return !n.draining.Load() && !n.closed.Load() && n.notReady.Load() == nil && n.fresh.Load() == nil
}

// SetNotReady marks the node as unable to serve for reason (for example
// "no TLS certificate yet: ..."), or ready again when reason is empty.
// While not ready, /readyz answers 503 with the reason, upgrades are
// refused with 503 not_ready, and the Publisher, when it can, takes the
// node out of assignment. Connections already open are left alone. It
// blocks while the change is published.
func (n *Node) SetNotReady(reason string) {
	if reason == "" {
		n.notReady.Store(nil)
	} else {
		n.notReady.Store(&reason)
	}
	n.publishReadiness()
}

// publishReadiness publishes whether the node may be assigned clients (not
// marked not ready, past its iat floor) when that changed.
func (n *Node) publishReadiness() {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	ready := n.notReady.Load() == nil && n.fresh.Load() == nil
	if ready == n.published || n.closed.Load() {
		return
	}
	n.published = ready
	if rp, ok := n.pub.(readinessPublisher); ok {
		if err := rp.SetReady(ready); err != nil {
			n.log.Warn("publishing readiness failed", "ready", ready, "err", err)
		}
	}
}

// NotReadyReason is why the node is not ready (SetNotReady, else the iat
// floor after a start), or "".
func (n *Node) NotReadyReason() string {
	if r := n.notReady.Load(); r != nil {
		return *r
	}
	if r := n.fresh.Load(); r != nil {
		return *r
	}
	return ""
}

// Draining reports whether a drain has started.
func (n *Node) Draining() bool { return n.draining.Load() }

// Drained is closed once a drain has finished (all clients gone or the
// deadline passed), whether it was started by Drain or by the admin
// endpoint. The binary exits on it.
func (n *Node) Drained() <-chan struct{} { return n.drained }

// Registry is the registry the node's metrics live in.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// handleWS admits or refuses one upgrade. The order is: cheap checks, slot
// reservation, token (which burns its jti), upstream dial, upgrade. Every
// refusal before the upgrade is a JSON HTTP error and a counted reason.
func (n *Node) handleWS(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !websocket.IsWebSocketUpgrade(r) {
		// Checked before the token so a stray GET does not burn it.
		n.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, CodeBadRequest, "not a WebSocket upgrade request", false)
		return
	}
	if n.draining.Load() || n.closed.Load() {
		n.refuse(w, r, http.StatusServiceUnavailable, ReasonDraining, CodeDraining, "node is draining; reconnect through auth", true)
		return
	}
	if n.notReady.Load() != nil {
		n.refuse(w, r, http.StatusServiceUnavailable, ReasonNotReady, CodeNotReady, "node is not ready; reconnect through auth", true)
		return
	}
	if !n.reserve() {
		n.refuse(w, r, http.StatusServiceUnavailable, ReasonFull, CodeNodeFull, "node is at its connection cap; reconnect through auth", true)
		return
	}
	reserved := true
	defer func() {
		if reserved {
			n.release()
		}
	}()

	raw := tokenParam(r.URL)
	if raw == "" {
		raw = wire.TokenFromProtocols(websocket.Subprotocols(r))
	}
	claims, err := n.verifier.Verify(raw)
	if err != nil {
		status, reason := http.StatusUnauthorized, token.ReasonMalformed
		var te *token.Error
		if errors.As(err, &te) {
			status, reason = te.HTTPStatus(), te.Reason
		}
		n.refuse(w, r, status, string(reason), string(reason), "connection token rejected: "+string(reason), false)
		return
	}

	if !n.users.acquire(claims.Subject) {
		// After the token check, which burns the token: the user is known
		// only from it, and a client refused here needs a new one anyway.
		w.Header().Set("Retry-After", userLimitRetryAfter)
		n.refuse(w, r, http.StatusTooManyRequests, ReasonUserLimit, CodeTooManyConnections,
			"this user already holds the most connections allowed on this node", false)
		return
	}
	userHeld := true
	defer func() {
		if userHeld {
			n.users.release(claims.Subject)
		}
	}()

	var up *websocket.Conn
	if n.dialer != nil {
		// Dialed before the upgrade, so a dead upstream is a plain 502 the
		// client retries through auth, not an open-then-closed socket.
		up, err = n.dialUpstream(r, claims.Subject)
		if err != nil {
			n.log.Warn("upstream dial failed", "remote", r.RemoteAddr, "err", err)
			n.refuse(w, r, http.StatusBadGateway, ReasonUpstream, CodeUpstreamUnavailable, "upstream application unavailable", true)
			return
		}
	}

	upgrader := &n.upgrader
	if r.TLS != nil {
		upgrader = &n.tlsUpgrader
	}
	hj := &hijacker{ResponseWriter: w}
	ws, err := upgrader.Upgrade(hj, r, nil)
	if err != nil {
		// Upgrader.Error has answered and counted it, when it could.
		if up != nil {
			up.Close()
		}
		n.log.Debug("upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	reserved, userHeld = false, false // the slot and the user's count now belong to the connection
	n.metrics.accepts.Inc()
	n.metrics.handshake.Observe(time.Since(start).Seconds())
	var movedIn int64
	if claims.Rebalanced {
		// A rebalance moved it here: it is exempt from the next moves
		// (RebalanceConfig.Exempt).
		movedIn = time.Now().UnixNano()
		n.metrics.rebalanceArrived.Inc()
	}
	c := n.newConn(ws, hj.fc, up, claims.Subject, movedIn)
	n.log.Debug("connected", "remote", r.RemoteAddr, "user", claims.Subject)
	// This handler returns: net/http's request state and this goroutine's
	// grown stack are freed, and nothing waits on the connection until it
	// has data.
	c.start()
	if n.draining.Load() || n.closed.Load() {
		// A drain or close started while we were handshaking and may have
		// missed this connection.
		code := wire.CloseDraining
		if n.closed.Load() {
			code = wire.CloseShutdown
		}
		c.closeWith(code, closeText(code))
	}
}

// tokenParam is r.URL.Query().Get(wire.TokenQueryParam), without building
// the map of every parameter when the query holds just one, as a client's
// does.
func tokenParam(u *url.URL) string {
	q := u.RawQuery
	if strings.ContainsAny(q, "&;") {
		return u.Query().Get(wire.TokenQueryParam)
	}
	k, v, _ := strings.Cut(q, "=")
	if k, err := url.QueryUnescape(k); err != nil || k != wire.TokenQueryParam {
		return ""
	}
	v, err := url.QueryUnescape(v)
	if err != nil {
		return ""
	}
	return v
}

// reserve takes a connection slot, or reports false when the node is full.
// The add happens first, so concurrent callers can never all see room.
func (n *Node) reserve() bool {
	s := n.slots.Add(1)
	if s > int64(n.conf.MaxConns) {
		n.slots.Add(-1)
		return false
	}
	for {
		hw := n.highWater.Load()
		if s <= hw || n.highWater.CompareAndSwap(hw, s) {
			return true
		}
	}
}

func (n *Node) release() { n.slots.Add(-1) }

// publish sends the current count. The lock keeps a slow caller from
// publishing a stale count after a newer one.
func (n *Node) publish() {
	if n.pub == nil {
		return
	}
	n.pubMu.Lock()
	n.pub.SetConns(int(n.active.Load()))
	n.pubMu.Unlock()
}

// refuse answers a pre-upgrade refusal with a JSON wire.Error and counts it.
// Only the path and remote address are logged: the query holds the token.
func (n *Node) refuse(w http.ResponseWriter, r *http.Request, status int, reason, code, msg string, retry bool) {
	n.metrics.rejects.WithLabelValues(reason).Inc()
	n.log.Debug("upgrade refused", "remote", r.RemoteAddr, "path", r.URL.Path, "status", status, "reason", reason)
	if retry {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	writeJSONError(w, status, code, msg)
}

// upgradeError is gorilla's error callback for malformed handshakes.
func (n *Node) upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	w.Header().Set("Sec-Websocket-Version", "13")
	n.refuse(w, r, status, ReasonBadRequest, CodeBadRequest, reason.Error(), false)
}

func (n *Node) handleAdminDrain(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if !n.adminAuthorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wsdirect-node"`)
		writeJSONError(w, http.StatusUnauthorized, CodeUnauthorized, "admin token required")
		return
	}
	n.log.Info("drain requested via admin endpoint", "remote", r.RemoteAddr)
	go func() {
		if err := n.Drain(context.Background()); err != nil {
			n.log.Warn("drain finished with error", "err", err)
		}
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "draining", "connections": n.Conns()})
}

func (n *Node) adminAuthorized(r *http.Request) bool {
	if n.adminToken() == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	return secret.Equal(strings.TrimSpace(got), n.adminToken())
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(wire.Error{Code: code, Message: msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(s))
}

// clientIP is the remote IP without port, for the upstream's X-Forwarded-For.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
