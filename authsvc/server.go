package authsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/secret"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// MaxRequestBytes bounds the body of POST /v1/connect.
const MaxRequestBytes = 8 << 10

// NodeView is the live cluster view the server picks from; a
// *cluster.Cluster satisfies it.
type NodeView interface {
	// Nodes returns the alive node members with their latest counts.
	Nodes() []cluster.Member
}

// memberLister is optionally implemented by a NodeView (a *cluster.Cluster
// does) to let the server count the auth instances sharing the traffic.
type memberLister interface {
	Members() []cluster.Member
}

// Config configures a Server. Start from DefaultConfig; New rejects invalid
// fields.
type Config struct {
	// Signer mints connection tokens. Required; replace it at run time
	// with Server.SetSigner (key rotation).
	Signer *token.Signer
	// Credentials checks logins. Required.
	Credentials Authenticator
	// View is the cluster view to pick nodes from. Required.
	View NodeView
	// AdminToken guards GET /v1/nodes. Empty disables the endpoint (it
	// answers 404).
	AdminToken string
	// LoginRate is how fast failed logins per client IP are allowed to
	// recur. Must be > 0; rate.Inf disables limiting.
	LoginRate rate.Limit
	// LoginBurst is how many failed logins per client IP are allowed in a
	// row. Must be > 0.
	LoginBurst int
	// MaxTrackedIPs bounds the per-IP limiter table. Must be > 0.
	MaxTrackedIPs int
	// MaxUserTokens is how many tokens one user may hold that are not yet
	// redeemed as far as this instance can tell (see userTokens); one more
	// is refused with 429 too_many_tokens and Retry-After. It keeps one
	// user's unused tokens from making the cluster look full to everybody
	// else. 0 means no limit (load tests whose clients all share one user).
	MaxUserTokens int
	// MaxTrackedUsers bounds the per-user token table; when it is full of
	// users with outstanding tokens, new users are refused until some
	// retire. Must be > 0 when MaxUserTokens is.
	MaxTrackedUsers int
	// TrustForwardedFor takes the client IP from the rightmost
	// X-Forwarded-For entry; false takes the TCP peer address. Enable it
	// only behind a proxy that sets the header.
	TrustForwardedFor bool
	// Logger receives structured logs. Nil means slog.Default(). Passwords
	// and tokens are never logged.
	Logger *slog.Logger
	// Registry receives the server's metrics and is served on /metrics.
	// Nil means a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Rand seeds node picking. Nil means randomly seeded. The server's
	// picker guards it with its own lock, so do not share one Rand between
	// servers.
	Rand *rand.Rand
	// Picker overrides the node picker. Nil means NewPicker(Rand, token
	// TTL) with PendingSettle and the number of auth instances in the view.
	// A *Balancer sends every client to a load balancer instead.
	Picker NodePicker
	// PendingSettle is the Picker's settle time (see Picker). 0 retires a
	// pending assignment as soon as any newer count arrives. Must not be
	// negative.
	PendingSettle time.Duration
	// AuthInstances is how many auth instances share the traffic, for
	// Picker.SetPeers. 0 means counted from the view's alive auth members
	// when the view lists members (a *cluster.Cluster), else 1. Must not
	// be negative.
	AuthInstances int
	// RetryAfter is the Retry-After sent with 503 no_capacity, rounded up
	// to whole seconds. Must be > 0.
	RetryAfter time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with production defaults; the caller sets
// Signer, Credentials and View.
func DefaultConfig() *Config {
	return &Config{
		// One failed login per second per IP after a burst of 10: a person
		// who mistypes never notices; a guesser gets one try a second per
		// address.
		LoginRate:  1,
		LoginBurst: 10,
		// Bounds the limiter's memory under a flood from many addresses.
		MaxTrackedIPs: DefaultMaxTrackedIPs,
		// One user's unredeemed tokens are bounded so that they cannot make
		// the cluster look full to everybody else (see userTokens).
		MaxUserTokens: DefaultMaxUserTokens,
		// About 100 B a user; bounds the table under a flood of accounts.
		MaxTrackedUsers: DefaultMaxTrackedUsers,
		// The time a fresh count takes to reflect an assignment (see
		// DefaultPendingSettle).
		PendingSettle: DefaultPendingSettle,
		// A second is the least Retry-After can say, and short for a
		// person waiting.
		RetryAfter: time.Second,
	}
}

// Server is the auth service's HTTP API.
type Server struct {
	conf    Config
	signer  atomic.Pointer[token.Signer]
	admin   atomic.Pointer[string] // SetAdminToken
	picker  NodePicker
	p2c     *Picker // picker when it is a *Picker, for SetPeers
	limiter *ipLimiter
	tokens  *userTokens
	log     *slog.Logger
	reg     *prometheus.Registry

	peersMu   sync.Mutex
	peersSeen time.Time

	requests       *prometheus.CounterVec
	rebalanced     *prometheus.CounterVec
	assignments    *prometheus.CounterVec
	pickSeconds    prometheus.Histogram
	connectSeconds *prometheus.HistogramVec
}

// Results of POST /v1/connect, the label values of
// wsdirect_auth_requests_total.
const (
	ResultOK                 = "ok"
	ResultInvalidCredentials = "invalid_credentials"
	ResultRateLimited        = "rate_limited"
	ResultNoCapacity         = "no_capacity"
	ResultBadRequest         = "bad_request"
	ResultBackendUnavailable = "auth_backend_unavailable"
	ResultInternalError      = "internal_error"
	ResultMethodNotAllowed   = "method_not_allowed"
	// ResultTooManyTokens: the user holds MaxUserTokens outstanding tokens.
	ResultTooManyTokens = "too_many_tokens"
	// ResultCanceled: the client gave up before the answer (no body is
	// read by anyone; the status is 408).
	ResultCanceled = "canceled"
)

var results = []string{ResultOK, ResultInvalidCredentials, ResultRateLimited, ResultNoCapacity,
	ResultBadRequest, ResultBackendUnavailable, ResultInternalError, ResultMethodNotAllowed,
	ResultTooManyTokens, ResultCanceled}

// New returns a Server for conf, which it uses as given: it returns an
// error naming the first missing or out-of-range field.
func New(conf *Config) (*Server, error) {
	if conf == nil {
		return nil, errors.New("authsvc: nil Config")
	}
	c := *conf
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
		c.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{
		conf:    c,
		limiter: newIPLimiter(c.LoginRate, c.LoginBurst, c.MaxTrackedIPs),
		tokens:  newUserTokens(c.MaxUserTokens, c.Signer.TTL(), c.PendingSettle, c.MaxTrackedUsers),
		log:     c.Logger,
		reg:     c.Registry,
	}
	s.signer.Store(c.Signer)
	s.admin.Store(&c.AdminToken)
	s.picker = c.Picker
	if b, ok := s.picker.(*Balancer); ok {
		s.tokens.pool = b.Audience()
	}
	if s.picker == nil {
		p := NewPicker(c.Rand, c.Signer.TTL())
		p.SetSettle(c.PendingSettle)
		p.SetPeers(max(c.AuthInstances, 1))
		s.picker, s.p2c = p, p
	}
	if err := s.registerMetrics(); err != nil {
		return nil, err
	}
	return s, nil
}

// validate reports the first problem with c.
func (c *Config) validate() error {
	switch {
	case c.Signer == nil:
		return errors.New("authsvc: Signer is required")
	case c.Credentials == nil:
		return errors.New("authsvc: Credentials is required")
	case c.View == nil:
		return errors.New("authsvc: View is required")
	case !(c.LoginRate > 0):
		return fmt.Errorf("authsvc: LoginRate must be > 0 (rate.Inf disables limiting), got %v", c.LoginRate)
	case c.LoginBurst <= 0:
		return fmt.Errorf("authsvc: LoginBurst must be > 0, got %d", c.LoginBurst)
	case c.MaxTrackedIPs <= 0:
		return fmt.Errorf("authsvc: MaxTrackedIPs must be > 0, got %d", c.MaxTrackedIPs)
	case c.PendingSettle < 0:
		return fmt.Errorf("authsvc: PendingSettle must not be negative, got %s", c.PendingSettle)
	case c.AuthInstances < 0:
		return fmt.Errorf("authsvc: AuthInstances must not be negative, got %d", c.AuthInstances)
	case c.RetryAfter <= 0:
		return fmt.Errorf("authsvc: RetryAfter must be > 0, got %s", c.RetryAfter)
	case c.MaxUserTokens < 0:
		return fmt.Errorf("authsvc: MaxUserTokens must be >= 0 (0: no limit), got %d", c.MaxUserTokens)
	case c.MaxUserTokens > 0 && c.MaxTrackedUsers <= 0:
		return fmt.Errorf("authsvc: MaxTrackedUsers must be > 0 when MaxUserTokens is set, got %d", c.MaxTrackedUsers)
	}
	return nil
}

func (s *Server) registerMetrics() error {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsdirect_auth_requests_total",
		Help: "POST /v1/connect requests by result.",
	}, []string{"result"})
	for _, r := range results {
		s.requests.WithLabelValues(r)
	}
	s.rebalanced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsdirect_auth_rebalance_requests_total",
		Help: "POST /v1/connect requests of clients that a node moved to rebalance the cluster (reason \"rebalance\"), by result; also counted in wsdirect_auth_requests_total.",
	}, []string{"result"})
	for _, r := range results {
		s.rebalanced.WithLabelValues(r)
	}
	s.assignments = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsdirect_auth_assignments_total",
		Help: "Clients assigned to each node by this auth instance.",
	}, []string{"node"})
	s.pickSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wsdirect_auth_pick_seconds",
		Help:    "Time to pick a node, including reading the cluster view.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
	})
	available := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wsdirect_auth_nodes_available",
		Help: "Nodes that can take an assignment now: alive, not draining, with room.",
	}, func() float64 {
		now := s.conf.Now()
		n := 0
		for _, m := range s.conf.View.Nodes() {
			if Candidate(m, s.picker.Pending(m.Name, now)) {
				n++
			}
		}
		return float64(n)
	})
	s.connectSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "wsdirect_auth_connect_seconds",
		Help: "Time to answer POST /v1/connect, from the request to the answer, by result (the credential check, a wait for it included).",
		// 250 µs (a cached login) .. about 16 s (a login storm on a cold
		// cache at a high bcrypt cost).
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 17),
	}, []string{"result"})
	for _, r := range results {
		s.connectSeconds.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{s.requests, s.rebalanced, s.assignments, s.pickSeconds, s.connectSeconds, available} {
		if err := s.reg.Register(c); err != nil {
			return fmt.Errorf("authsvc: register metrics: %w", err)
		}
	}
	return nil
}

// SetSigner replaces the signing key (rotation, SIGHUP). Tokens minted with
// the old key stay valid on nodes that still trust its public key.
func (s *Server) SetSigner(sg *token.Signer) {
	if sg != nil {
		s.signer.Store(sg)
	}
}

// Signer is the signer currently in use.
func (s *Server) Signer() *token.Signer { return s.signer.Load() }

// Registry is the registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handler serves POST /v1/connect, GET /v1/nodes, /healthz and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(wire.ConnectPath, s.handleConnect)
	mux.HandleFunc(wire.NodesPath, s.handleNodes)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	return mux
}

func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var moved bool
	result := s.connect(w, r, &moved)
	s.requests.WithLabelValues(result).Inc()
	if moved {
		s.rebalanced.WithLabelValues(result).Inc()
	}
	s.connectSeconds.WithLabelValues(result).Observe(time.Since(start).Seconds())
}

// leastPicker is implemented by pickers that can place a client moved by a
// rebalance on the least loaded node (a *Picker does); others place it
// with Pick.
type leastPicker interface {
	PickLeastLoaded(nodes []cluster.Member, now time.Time) (cluster.Member, bool)
}

// connect answers one POST /v1/connect and returns its result label. It
// sets *moved once the request is known to come from a client moved by a
// rebalance.
func (s *Server) connect(w http.ResponseWriter, r *http.Request, moved *bool) string {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(w, http.StatusMethodNotAllowed, ResultMethodNotAllowed, "use POST")
	}
	now := s.conf.Now()
	ip := clientIP(r, s.conf.TrustForwardedFor)
	if ok, retry := s.limiter.allow(ip, now); !ok {
		w.Header().Set("Retry-After", retryAfter(retry))
		s.log.Warn("login rate limited", "ip", ip)
		return fail(w, http.StatusTooManyRequests, ResultRateLimited, "too many failed logins from this address")
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fail(w, http.StatusBadRequest, ResultBadRequest, fmt.Sprintf("request body larger than %d bytes", MaxRequestBytes))
		}
		return fail(w, http.StatusBadRequest, ResultBadRequest, "cannot read request body")
	}
	req, err := DecodeConnectRequest(body)
	if err != nil {
		return fail(w, http.StatusBadRequest, ResultBadRequest, err.Error())
	}
	*moved = req.Reason == wire.ReasonRebalance

	gate := &loginGate{lim: s.limiter, ip: ip, now: s.conf.Now}
	user, err := s.conf.Credentials.Authenticate(withGate(r.Context(), gate), r, req)
	switch {
	case errors.Is(err, ErrRateLimited):
		w.Header().Set("Retry-After", retryAfter(s.limiter.retryAfter(ip, s.conf.Now())))
		s.log.Warn("login rate limited", "ip", ip)
		return fail(w, http.StatusTooManyRequests, ResultRateLimited, "too many failed logins from this address")
	case errors.Is(err, ErrInvalidCredentials):
		if !gate.charged() {
			s.limiter.fail(ip, s.conf.Now())
		}
		// The username is logged to spot attacks; the password never is.
		s.log.Info("login failed", "ip", ip, "user", req.Username)
		return fail(w, http.StatusUnauthorized, ResultInvalidCredentials, "invalid credentials")
	case err != nil && r.Context().Err() != nil:
		// The client gave up; nobody reads this answer.
		return fail(w, http.StatusRequestTimeout, ResultCanceled, "request abandoned")
	case err != nil:
		s.log.Error("credential check failed", "ip", ip, "err", err)
		return fail(w, http.StatusBadGateway, ResultBackendUnavailable, "the credential backend is unavailable; retry later")
	case user == "":
		s.log.Error("credential backend returned an empty user", "ip", ip)
		return fail(w, http.StatusBadGateway, ResultBackendUnavailable, "the credential backend returned no user")
	}

	pickStart := time.Now()
	now = s.conf.Now()
	nodes := s.conf.View.Nodes()
	ticket, ok, wait := s.tokens.reserve(user, nodes, now)
	if !ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		s.log.Warn("too many outstanding tokens", "user", user, "ip", ip)
		return fail(w, http.StatusTooManyRequests, ResultTooManyTokens,
			fmt.Sprintf("this user holds %d tokens not used yet; connect with one or retry later", s.conf.MaxUserTokens))
	}
	s.refreshPeers(now)
	var node cluster.Member
	if lp, isLeast := s.picker.(leastPicker); *moved && isLeast {
		node, ok = lp.PickLeastLoaded(nodes, now)
	} else {
		node, ok = s.picker.Pick(nodes, now)
	}
	s.pickSeconds.Observe(time.Since(pickStart).Seconds())
	if !ok {
		s.tokens.cancel(ticket)
		w.Header().Set("Retry-After", retryAfter(s.conf.RetryAfter))
		s.log.Warn("no node with capacity", "nodes", len(nodes))
		return fail(w, http.StatusServiceUnavailable, ResultNoCapacity, "no node has room; retry later")
	}
	sg := s.signer.Load()
	mint := sg.Mint
	if *moved {
		// The node it lands on will not move it again for a while
		// (docs/design.md section 15).
		mint = sg.MintRebalanced
	}
	tok, exp, err := mint(user, node.Name)
	if err != nil {
		s.tokens.cancel(ticket)
		s.log.Error("mint token", "err", err)
		return fail(w, http.StatusInternalServerError, ResultInternalError, "cannot mint a token")
	}
	s.tokens.assign(ticket, node.Name)
	s.assignments.WithLabelValues(node.Name).Inc()
	writeJSON(w, http.StatusOK, wire.ConnectResponse{URL: node.URL(), Token: tok, NodeID: node.Name, ExpiresAt: exp})
	s.log.Debug("assigned", "user", user, "node", node.Name, "rebalanced", *moved)
	return ResultOK
}

// refreshPeers updates the picker's count of auth instances from the view,
// at most once a second, when it was not configured.
func (s *Server) refreshPeers(now time.Time) {
	if s.p2c == nil || s.conf.AuthInstances > 0 {
		return
	}
	ml, ok := s.conf.View.(memberLister)
	if !ok {
		return
	}
	s.peersMu.Lock()
	if now.Sub(s.peersSeen) < time.Second {
		s.peersMu.Unlock()
		return
	}
	s.peersSeen = now
	s.peersMu.Unlock()
	n := 0
	for _, m := range ml.Members() {
		if m.Alive && m.Role == cluster.RoleAuth {
			n++
		}
	}
	s.p2c.SetPeers(n)
}

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	if s.adminToken() == "" {
		writeJSON(w, http.StatusNotFound, wire.Error{Code: "not_found", Message: "no admin token configured"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, wire.Error{Code: "method_not_allowed", Message: "use GET"})
		return
	}
	got, _ := bearer(r)
	if !secret.Equal(got, s.adminToken()) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wsdirect-auth"`)
		writeJSON(w, http.StatusUnauthorized, wire.Error{Code: "unauthorized", Message: "admin token required"})
		return
	}
	now := s.conf.Now()
	nodes := s.conf.View.Nodes()
	out := make([]wire.NodeStatus, 0, len(nodes))
	for _, m := range nodes {
		out = append(out, wire.NodeStatus{
			ID: m.Name, URL: m.URL(), Connections: m.Conns, Pending: s.picker.Pending(m.Name, now),
			Cap: m.Cap, Zone: m.Zone, Draining: m.Draining, Ready: !m.NotReady, Alive: m.Alive, UpdatedAt: m.UpdatedAt,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

// fail writes a wire.Error answer and returns its result label.
func fail(w http.ResponseWriter, status int, result, msg string) string {
	writeJSON(w, status, wire.Error{Code: result, Message: msg})
	return result
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// retryAfter formats d as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
