// Package clienttest runs a fake wsdirect auth service and fake nodes on
// 127.0.0.1 for client-side tests (the Go client, the bench). The fakes use
// real tokens: auth mints them with a token.Signer, each node checks them
// with its own token.Verifier, so single use and audience are enforced as in
// production. Behaviour is switchable per test: refuse with a status, close
// connections with a code, echo.
package clienttest

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// Username and Password are the only credentials the fake auth accepts.
const (
	Username = "alice"
	Password = "s3cret"
)

// Cluster is a fake auth service in front of fake nodes. Auth assigns nodes
// round-robin.
type Cluster struct {
	Auth  *httptest.Server
	Nodes []*Node

	// AuthCalls counts POST /v1/connect requests.
	AuthCalls atomic.Int32
	// AuthStatus, when non-zero, is answered instead of a token, with
	// AuthRetryAfter as Retry-After.
	AuthStatus     atomic.Int32
	AuthRetryAfter atomic.Value // string
	// LastBearer is the Authorization header of the last auth request.
	LastBearer atomic.Value // string

	mu      sync.Mutex
	tokens  []string
	reasons []string
	next    int
}

// Node is one fake node.
type Node struct {
	ID     string
	Server *httptest.Server
	// Status, when non-zero, is answered instead of the upgrade, with
	// RetryAfter as Retry-After.
	Status     atomic.Int32
	RetryAfter atomic.Value // string
	// Accepted counts upgrades. It moves after the 101 response is written,
	// so a client can see its connection open a moment before it is
	// counted: tests wait for the count (probe.Until) rather than read it.
	Accepted atomic.Int32
	// ProtocolToken records whether the last upgrade carried the token in
	// Sec-WebSocket-Protocol.
	ProtocolToken atomic.Bool

	mu         sync.Mutex
	closeCodes []int
	remoteIPs  map[string]int
	tls        bool
}

// RemoteIPs counts accepted upgrades by client source IP. Like Accepted,
// it lags the client's view by a moment.
func (n *Node) RemoteIPs() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]int, len(n.remoteIPs))
	for k, v := range n.remoteIPs {
		out[k] = v
	}
	return out
}

// CloseWith makes the node close its next accepted connections right after
// the upgrade, the i-th with codes[i] (0 = echo as usual).
func (n *Node) CloseWith(codes ...int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closeCodes = append([]int(nil), codes...)
}

func (n *Node) nextCloseCode() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.closeCodes) == 0 {
		return 0
	}
	c := n.closeCodes[0]
	n.closeCodes = n.closeCodes[1:]
	return c
}

// URL is where clients open the WebSocket on n.
func (n *Node) URL() string {
	scheme := "ws://"
	if n.tls {
		scheme = "wss://"
	}
	return scheme + n.Server.Listener.Addr().String() + wire.WSPath
}

// New starts a fake auth service and nodes fake nodes (node-1, node-2, ...),
// all closed at the end of the test.
func New(t testing.TB, nodes int) *Cluster {
	t.Helper()
	return newCluster(t, nodes, nil)
}

// NewTLS is New with auth on https:// and the nodes on wss://, all serving
// cert.
func NewTLS(t testing.TB, nodes int, cert tls.Certificate) *Cluster {
	t.Helper()
	return newCluster(t, nodes, &tls.Config{Certificates: []tls.Certificate{cert}})
}

func newCluster(t testing.TB, nodes int, tc *tls.Config) *Cluster {
	t.Helper()
	_, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := token.NewSigner(priv)
	ks := token.KeySet{}
	ks.Add(signer.PublicKey())
	c := &Cluster{}
	for i := 0; i < nodes; i++ {
		n := &Node{ID: "node-" + strconv.Itoa(i+1), tls: tc != nil}
		n.Server = loopbackServer(t, n.handler(token.NewVerifier(n.ID, ks)), tc)
		c.Nodes = append(c.Nodes, n)
	}
	c.Auth = loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != wire.ConnectPath || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		c.AuthCalls.Add(1)
		c.LastBearer.Store(r.Header.Get("Authorization"))
		if st := c.AuthStatus.Load(); st != 0 {
			if ra, _ := c.AuthRetryAfter.Load().(string); ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			WriteJSON(w, int(st), wire.Error{Code: "refused", Message: "status " + strconv.Itoa(int(st))})
			return
		}
		var req wire.ConnectRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			WriteJSON(w, http.StatusBadRequest, wire.Error{Code: "bad_request"})
			return
		}
		c.mu.Lock()
		c.reasons = append(c.reasons, req.Reason)
		c.mu.Unlock()
		if req.Username != Username || req.Password != Password {
			WriteJSON(w, http.StatusUnauthorized, wire.Error{Code: "invalid_credentials", Message: "bad user or password"})
			return
		}
		c.mu.Lock()
		n := c.Nodes[c.next%len(c.Nodes)]
		c.next++
		c.mu.Unlock()
		tok, exp, err := signer.Mint(req.Username, n.ID)
		if err != nil {
			WriteJSON(w, http.StatusInternalServerError, wire.Error{Code: "internal"})
			return
		}
		c.mu.Lock()
		c.tokens = append(c.tokens, tok)
		c.mu.Unlock()
		WriteJSON(w, http.StatusOK, wire.ConnectResponse{URL: n.URL(), Token: tok, NodeID: n.ID, ExpiresAt: exp})
	}), tc)
	return c
}

// AuthURL is the fake auth's base URL.
func (c *Cluster) AuthURL() string { return c.Auth.URL }

// Reasons lists the reason of every connect request auth decoded, in
// order ("" for none).
func (c *Cluster) Reasons() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reasons...)
}

// Tokens lists every token auth issued, in order.
func (c *Cluster) Tokens() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.tokens...)
}

func (n *Node) handler(v *token.Verifier) http.Handler {
	upgrader := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}, ReadBufferSize: 1024, WriteBufferSize: 1024}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != wire.WSPath {
			http.NotFound(w, r)
			return
		}
		if st := n.Status.Load(); st != 0 {
			if ra, _ := n.RetryAfter.Load().(string); ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			WriteJSON(w, int(st), wire.Error{Code: "node_full", Message: "at cap"})
			return
		}
		raw := r.URL.Query().Get(wire.TokenQueryParam)
		fromProto := wire.TokenFromProtocols(websocket.Subprotocols(r))
		n.ProtocolToken.Store(fromProto != "")
		if raw == "" {
			raw = fromProto
		}
		if _, err := v.Verify(raw); err != nil {
			status, reason := http.StatusUnauthorized, "malformed"
			if te, ok := err.(*token.Error); ok {
				status, reason = te.HTTPStatus(), string(te.Reason)
			}
			WriteJSON(w, status, wire.Error{Code: reason})
			return
		}
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			n.mu.Lock()
			if n.remoteIPs == nil {
				n.remoteIPs = map[string]int{}
			}
			n.remoteIPs[host]++
			n.mu.Unlock()
		}
		n.Accepted.Add(1) // last: once it counts an upgrade, RemoteIPs has it too
		if code := n.nextCloseCode(); code != 0 {
			_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, "bye"))
			_, _, _ = conn.ReadMessage() // the client's close answer
			return
		}
		for {
			mt, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(mt, data); err != nil {
				return
			}
		}
	})
}

// loopbackServer starts h on 127.0.0.1 with a kernel-picked port, with TLS
// when tc is set.
func loopbackServer(t testing.TB, h http.Handler, tc *tls.Config) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = l
	if tc != nil {
		s.TLS = tc.Clone()
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
