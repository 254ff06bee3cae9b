package authsvc

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
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

// Config configures a Server.
type Config struct {
	// Signer mints connection tokens. Required; replace it at run time
	// with Server.SetSigner (key rotation).
	Signer *token.Signer
	// Credentials checks logins. Required.
	Credentials Authenticator
	// View is the cluster view to pick nodes from. Required.
	View NodeView
	// AdminToken guards GET /v1/nodes. Default "": the endpoint answers 404.
	AdminToken string
	// LoginRate is how fast failed logins per client IP are allowed to
	// recur. Default 1 per second; rate.Inf disables limiting.
	LoginRate rate.Limit
	// LoginBurst is how many failed logins per client IP are allowed in a
	// row. Default 10.
	LoginBurst int
	// MaxTrackedIPs bounds the per-IP limiter table. Default
	// DefaultMaxTrackedIPs.
	MaxTrackedIPs int
	// TrustForwardedFor takes the client IP from the rightmost
	// X-Forwarded-For entry. Default false: the TCP peer address. Enable it
	// only behind a proxy that sets the header.
	TrustForwardedFor bool
	// Logger receives structured logs. Default slog.Default(). Passwords
	// and tokens are never logged.
	Logger *slog.Logger
	// Registry receives the server's metrics and is served on /metrics.
	// Default: a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Rand seeds node picking. Default: randomly seeded. The server's
	// picker guards it with its own lock, so do not share one Rand between
	// servers.
	Rand *rand.Rand
	// Picker overrides the node picker. Default: NewPicker(Rand, token TTL)
	// with PendingSettle and the number of auth instances in the view.
	Picker NodePicker
	// PendingSettle is the Picker's settle time (see Picker). Default
	// DefaultPendingSettle.
	PendingSettle time.Duration
	// AuthInstances is how many auth instances share the traffic, for
	// Picker.SetPeers. Default 0: counted from the view's alive auth
	// members when the view lists members (a *cluster.Cluster), else 1.
	AuthInstances int
	// RetryAfter is the Retry-After sent with 503 no_capacity. Default 1 s.
	RetryAfter time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default filled in; the caller
// sets Signer, Credentials and View.
func DefaultConfig() *Config {
	return &Config{
		LoginRate:     1,
		LoginBurst:    10,
		MaxTrackedIPs: DefaultMaxTrackedIPs,
		Logger:        slog.Default(),
		PendingSettle: DefaultPendingSettle,
		RetryAfter:    time.Second,
		Now:           time.Now,
	}
}

// Server is the auth service's HTTP API.
type Server struct {
	conf    Config
	signer  atomic.Pointer[token.Signer]
	picker  NodePicker
	p2c     *Picker // picker when it is a *Picker, for SetPeers
	limiter *ipLimiter
	log     *slog.Logger
	reg     *prometheus.Registry
	adminSH [32]byte

	peersMu   sync.Mutex
	peersSeen time.Time

	requests    *prometheus.CounterVec
	assignments *prometheus.CounterVec
	pickSeconds prometheus.Histogram
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
)

var results = []string{ResultOK, ResultInvalidCredentials, ResultRateLimited, ResultNoCapacity,
	ResultBadRequest, ResultBackendUnavailable, ResultInternalError, ResultMethodNotAllowed}

// New returns a Server for conf. Zero fields take DefaultConfig values.
func New(conf *Config) (*Server, error) {
	if conf == nil {
		return nil, errors.New("authsvc: nil config")
	}
	c := *conf
	d := DefaultConfig()
	if c.Signer == nil {
		return nil, errors.New("authsvc: Signer is required")
	}
	if c.Credentials == nil {
		return nil, errors.New("authsvc: Credentials is required")
	}
	if c.View == nil {
		return nil, errors.New("authsvc: View is required")
	}
	if c.LoginRate == 0 {
		c.LoginRate = d.LoginRate
	}
	if c.LoginRate < 0 {
		return nil, fmt.Errorf("authsvc: LoginRate %v must be positive", c.LoginRate)
	}
	if c.LoginBurst == 0 {
		c.LoginBurst = d.LoginBurst
	}
	if c.LoginBurst < 0 {
		return nil, fmt.Errorf("authsvc: LoginBurst %d must be positive", c.LoginBurst)
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.PendingSettle == 0 {
		c.PendingSettle = d.PendingSettle
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = d.RetryAfter
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
		c.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{
		conf:    c,
		limiter: newIPLimiter(c.LoginRate, c.LoginBurst, c.MaxTrackedIPs),
		log:     c.Logger,
		reg:     c.Registry,
	}
	s.signer.Store(c.Signer)
	if c.AdminToken != "" {
		s.adminSH = sha256.Sum256([]byte(c.AdminToken))
	}
	s.picker = c.Picker
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

func (s *Server) registerMetrics() error {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsdirect_auth_requests_total",
		Help: "POST /v1/connect requests by result.",
	}, []string{"result"})
	for _, r := range results {
		s.requests.WithLabelValues(r)
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
	for _, c := range []prometheus.Collector{s.requests, s.assignments, s.pickSeconds, available} {
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
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, http.StatusMethodNotAllowed, ResultMethodNotAllowed, "use POST")
		return
	}
	now := s.conf.Now()
	ip := clientIP(r, s.conf.TrustForwardedFor)
	if ok, retry := s.limiter.allow(ip, now); !ok {
		w.Header().Set("Retry-After", retryAfter(retry))
		s.fail(w, http.StatusTooManyRequests, ResultRateLimited, "too many failed logins from this address")
		s.log.Warn("login rate limited", "ip", ip)
		return
	}

	var req wire.ConnectRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(w, http.StatusBadRequest, ResultBadRequest, fmt.Sprintf("request body larger than %d bytes", MaxRequestBytes))
			return
		}
		s.fail(w, http.StatusBadRequest, ResultBadRequest, "cannot read request body")
		return
	}
	if len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.fail(w, http.StatusBadRequest, ResultBadRequest, "request body is not a JSON object {\"username\":..,\"password\":..}")
			return
		}
		if dec.More() {
			s.fail(w, http.StatusBadRequest, ResultBadRequest, "trailing data after the JSON object")
			return
		}
	}

	user, err := s.conf.Credentials.Authenticate(r.Context(), r, req)
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		s.limiter.fail(ip, now)
		// The username is logged to spot attacks; the password never is.
		s.log.Info("login failed", "ip", ip, "user", req.Username)
		s.fail(w, http.StatusUnauthorized, ResultInvalidCredentials, "invalid credentials")
		return
	case err != nil:
		s.log.Error("credential check failed", "ip", ip, "err", err)
		s.fail(w, http.StatusBadGateway, ResultBackendUnavailable, "the credential backend is unavailable; retry later")
		return
	case user == "":
		s.log.Error("credential backend returned an empty user", "ip", ip)
		s.fail(w, http.StatusBadGateway, ResultBackendUnavailable, "the credential backend returned no user")
		return
	}

	start := time.Now()
	nodes := s.conf.View.Nodes()
	s.refreshPeers(now)
	node, ok := s.picker.Pick(nodes, now)
	s.pickSeconds.Observe(time.Since(start).Seconds())
	if !ok {
		w.Header().Set("Retry-After", retryAfter(s.conf.RetryAfter))
		s.fail(w, http.StatusServiceUnavailable, ResultNoCapacity, "no node has room; retry later")
		s.log.Warn("no node with capacity", "nodes", len(nodes))
		return
	}
	tok, exp, err := s.signer.Load().Mint(user, node.Name)
	if err != nil {
		s.log.Error("mint token", "err", err)
		s.fail(w, http.StatusInternalServerError, ResultInternalError, "cannot mint a token")
		return
	}
	s.assignments.WithLabelValues(node.Name).Inc()
	s.requests.WithLabelValues(ResultOK).Inc()
	writeJSON(w, http.StatusOK, wire.ConnectResponse{URL: node.URL(), Token: tok, NodeID: node.Name, ExpiresAt: exp})
	s.log.Debug("assigned", "user", user, "node", node.Name)
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
	if s.conf.AdminToken == "" {
		writeJSON(w, http.StatusNotFound, wire.Error{Code: "not_found", Message: "no admin token configured"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, wire.Error{Code: "method_not_allowed", Message: "use GET"})
		return
	}
	got, _ := bearer(r)
	// Comparing hashes keeps the comparison constant-time in the length too.
	gotSH := sha256.Sum256([]byte(got))
	if got == "" || subtle.ConstantTimeCompare(gotSH[:], s.adminSH[:]) != 1 {
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

func (s *Server) fail(w http.ResponseWriter, status int, result, msg string) {
	s.requests.WithLabelValues(result).Inc()
	writeJSON(w, status, wire.Error{Code: result, Message: msg})
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
