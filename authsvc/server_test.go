package authsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// fakeView is a NodeView whose nodes tests change at will.
type fakeView struct {
	mu    sync.Mutex
	nodes []cluster.Member
}

func (v *fakeView) Nodes() []cluster.Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]cluster.Member(nil), v.nodes...)
}

func (v *fakeView) set(nodes ...cluster.Member) {
	v.mu.Lock()
	v.nodes = nodes
	v.mu.Unlock()
}

// failingAuth reports the backend as down.
type failingAuth struct{}

func (failingAuth) Authenticate(context.Context, *http.Request, wire.ConnectRequest) (string, error) {
	return "", fmt.Errorf("%w: test", ErrBackendUnavailable)
}

type testServer struct {
	*Server
	url    string
	view   *fakeView
	signer *token.Signer
}

func newTestServer(t *testing.T, mod func(*Config)) *testServer {
	t.Helper()
	_, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	line, err := HashPassword("alice", "s3cret", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users, err := NewUsersFile(writeUsers(t, line))
	if err != nil {
		t.Fatal(err)
	}
	view := &fakeView{}
	a, b := member("node-a", 0, 100), member("node-b", 0, 100)
	a.Addr, a.Port, b.Addr, b.Port = "127.0.0.1", 9001, "127.0.0.1", 9002
	view.set(a, b)
	conf := DefaultConfig()
	conf.Signer = token.NewSigner(priv)
	conf.Credentials = users
	conf.View = view
	conf.Rand = seeded(1)
	conf.LoginRate = rate.Every(time.Hour)
	conf.LoginBurst = 3
	// The tests log in as alice again and again; the per-user token limit
	// has tests of its own that set it.
	conf.MaxUserTokens = 0
	conf.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if mod != nil {
		mod(conf)
	}
	s, err := New(conf)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: s.Handler()}}
	hs.Start()
	t.Cleanup(hs.Close)
	return &testServer{Server: s, url: hs.URL, view: view, signer: conf.Signer}
}

// clientFrom returns an HTTP client whose connections come from localIP
// (any 127.0.0.x works on Linux loopback).
func clientFrom(localIP string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func (ts *testServer) connect(t *testing.T, c *http.Client, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+wire.ConnectPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func errCode(t *testing.T, data []byte) string {
	t.Helper()
	var e wire.Error
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("error body %q: %v", data, err)
	}
	return e.Code
}

const goodLogin = `{"username":"alice","password":"s3cret"}`

func TestConnectOK(t *testing.T) {
	ts := newTestServer(t, nil)
	keys := token.KeySet{}
	keys.Add(ts.signer.PublicKey())
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		resp, data := ts.connect(t, nil, goodLogin, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, data)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q", cc)
		}
		var cr wire.ConnectResponse
		if err := json.Unmarshal(data, &cr); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"node-a": "ws://127.0.0.1:9001/ws", "node-b": "ws://127.0.0.1:9002/ws"}[cr.NodeID]
		if want == "" || cr.URL != want {
			t.Fatalf("node %q url %q", cr.NodeID, cr.URL)
		}
		claims, err := token.NewVerifier(cr.NodeID, keys).Verify(cr.Token)
		if err != nil {
			t.Fatalf("token does not verify on its node: %v", err)
		}
		// The token lives its TTL from nbf, and the response says when it ends.
		if ttl := claims.ExpiresAt.Sub(claims.NotBefore); ttl != ts.signer.TTL() {
			t.Errorf("token valid for %v, want the signer's TTL %v", ttl, ts.signer.TTL())
		}
		if !cr.ExpiresAt.Equal(claims.ExpiresAt) {
			t.Errorf("expires_at %v, token's exp %v", cr.ExpiresAt, claims.ExpiresAt)
		}
		if claims.Subject != "alice" {
			t.Errorf("sub = %q", claims.Subject)
		}
		other := map[string]string{"node-a": "node-b", "node-b": "node-a"}[cr.NodeID]
		if _, err := token.NewVerifier(other, keys).Verify(cr.Token); token.ReasonOf(err) != token.ReasonWrongAudience {
			t.Errorf("token accepted by the other node: %v", err)
		}
		seen[cr.NodeID]++
	}
	// Pending accounting alternates between two equal empty nodes.
	if seen["node-a"] != 10 || seen["node-b"] != 10 {
		t.Errorf("assignments = %v, want 10/10", seen)
	}
	// Many successful logins from one IP are never rate limited.
	if resp, _ := ts.connect(t, nil, goodLogin, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("after 21 good logins: %d", resp.StatusCode)
	}
}

func TestConnectErrors(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.LoginBurst = 100 })
	for _, tc := range []struct {
		name, method, body string
		status             int
		code               string
	}{
		{"wrong password", http.MethodPost, `{"username":"alice","password":"nope"}`, 401, ResultInvalidCredentials},
		{"unknown user", http.MethodPost, `{"username":"bob","password":"s3cret"}`, 401, ResultInvalidCredentials},
		{"no body", http.MethodPost, ``, 401, ResultInvalidCredentials},
		{"bad json", http.MethodPost, `{"username":`, 400, ResultBadRequest},
		{"not an object", http.MethodPost, `[1,2]`, 400, ResultBadRequest},
		{"unknown field", http.MethodPost, `{"user":"alice"}`, 400, ResultBadRequest},
		{"trailing", http.MethodPost, goodLogin + `{}`, 400, ResultBadRequest},
		{"oversized", http.MethodPost, `{"username":"alice","password":"` + strings.Repeat("x", MaxRequestBytes) + `"}`, 400, ResultBadRequest},
		{"GET", http.MethodGet, ``, 405, ResultMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, ts.url+wire.ConnectPath, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || errCode(t, data) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, data, tc.status, tc.code)
		}
		if resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: Content-Type %q", tc.name, resp.Header.Get("Content-Type"))
		}
	}

	// No node with room: 503 + Retry-After.
	full := member("node-a", 100, 100)
	draining := member("node-b", 0, 100)
	draining.Draining = true
	ts.view.set(full, draining)
	resp, data := ts.connect(t, nil, goodLogin, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || errCode(t, data) != ResultNoCapacity || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("no capacity: %d %s Retry-After=%q", resp.StatusCode, data, resp.Header.Get("Retry-After"))
	}
	ts.view.set()
	if resp, _ := ts.connect(t, nil, goodLogin, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("empty cluster: %d", resp.StatusCode)
	}

	// A failing backend is 502, not 401.
	down := newTestServer(t, func(c *Config) { c.Credentials = failingAuth{} })
	resp, data = down.connect(t, nil, goodLogin, nil)
	if resp.StatusCode != http.StatusBadGateway || errCode(t, data) != ResultBackendUnavailable {
		t.Errorf("backend down: %d %s", resp.StatusCode, data)
	}
}

func TestConnectRateLimitPerIP(t *testing.T) {
	ts := newTestServer(t, nil) // burst 3, then 1 per hour
	bad := `{"username":"alice","password":"guess"}`
	a, b := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	for i := 0; i < 3; i++ {
		if resp, data := ts.connect(t, a, bad, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i, resp.StatusCode, data)
		}
	}
	resp, data := ts.connect(t, a, bad, nil)
	if resp.StatusCode != http.StatusTooManyRequests || errCode(t, data) != ResultRateLimited {
		t.Fatalf("4th failure: %d %s", resp.StatusCode, data)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	// Even the right password is refused while limited: that is the point.
	if resp, _ := ts.connect(t, a, goodLogin, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("good login from a limited IP: %d", resp.StatusCode)
	}
	// Another address is unaffected.
	if resp, data := ts.connect(t, b, goodLogin, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("other IP: %d %s", resp.StatusCode, data)
	}
	// X-Forwarded-For is ignored unless trusted.
	if resp, _ := ts.connect(t, a, goodLogin, map[string]string{"X-Forwarded-For": "10.9.9.9"}); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("untrusted XFF changed the client IP: %d", resp.StatusCode)
	}

	// Concurrent guesses gain nothing: those in flight when the budget ran
	// out are charged as debt, so 12 failures against a burst of 3 at one
	// per hour lock the address for about 9 hours.
	ts2 := newTestServer(t, nil)
	c := clientFrom("127.0.0.4")
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := ts2.connect(t, c, bad, nil)
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[http.StatusUnauthorized] < 3 || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != 12 {
		t.Errorf("12 concurrent guesses: %v", statuses)
	}
	resp, _ = ts2.connect(t, c, goodLogin, nil)
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	wantRetry := (statuses[http.StatusUnauthorized] - 3) * 3600
	if resp.StatusCode != http.StatusTooManyRequests || retry < wantRetry {
		t.Errorf("after %d failures: %d Retry-After %ds, want 429 and at least %ds", statuses[http.StatusUnauthorized], resp.StatusCode, retry, wantRetry)
	}

	// Concurrent good logins from one address are never limited.
	ts3 := newTestServer(t, nil)
	statuses = map[int]int{}
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := ts3.connect(t, nil, goodLogin, nil)
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[http.StatusOK] != 30 {
		t.Errorf("30 concurrent good logins: %v", statuses)
	}
}

func TestConnectTrustForwardedFor(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.TrustForwardedFor = true; c.LoginBurst = 1 })
	bad := `{"username":"alice","password":"guess"}`
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
	if resp, _ := ts.connect(t, nil, bad, xff("1.1.1.1, 10.0.0.1")); resp.StatusCode != 401 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	// The rightmost entry (set by our proxy) counts, not the client's own.
	if resp, _ := ts.connect(t, nil, bad, xff("2.2.2.2, 10.0.0.1")); resp.StatusCode != 429 {
		t.Errorf("same proxy-seen IP, forged left part: %d, want 429", resp.StatusCode)
	}
	if resp, _ := ts.connect(t, nil, bad, xff("10.0.0.2")); resp.StatusCode != 401 {
		t.Errorf("other client IP: %d, want 401", resp.StatusCode)
	}
}

func TestIPLimiterBounded(t *testing.T) {
	l := newIPLimiter(rate.Every(time.Second), 2, 100)
	now := time.Unix(1000, 0)
	for i := 0; i < 10_000; i++ {
		ip := fmt.Sprintf("10.0.%d.%d", i/256, i%256)
		if ok, _ := l.allow(ip, now); !ok {
			t.Fatal("fresh IP limited")
		}
		l.fail(ip, now)
	}
	if n := l.size(); n > 100 {
		t.Errorf("tracking %d IPs, max 100", n)
	}
	// After the idle time every bucket is full again and is dropped.
	l.allow("10.1.1.1", now.Add(2*time.Minute))
	if n := l.size(); n != 1 {
		t.Errorf("after idle eviction: %d IPs, want 1", n)
	}
}

func TestNodesEndpoint(t *testing.T) {
	noAdmin := newTestServer(t, nil)
	resp, err := http.Get(noAdmin.url + wire.NodesPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without admin token configured: %d, want 404", resp.StatusCode)
	}

	ts := newTestServer(t, func(c *Config) { c.AdminToken = "adm1n" })
	for i := 0; i < 3; i++ {
		ts.connect(t, nil, goodLogin, nil)
	}
	get := func(auth string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, ts.url+wire.NodesPath, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, data
	}
	for _, bad := range []string{"", "Bearer wrong", "Bearer adm1n2", "Basic adm1n", "adm1n"} {
		if resp, _ := get(bad); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", bad, resp.StatusCode)
		}
	}
	resp, data := get("Bearer adm1n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
	var nodes []wire.NodeStatus
	if err := json.Unmarshal(data, &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].ID != "node-a" || nodes[1].ID != "node-b" {
		t.Fatalf("nodes = %+v", nodes)
	}
	if nodes[0].Pending+nodes[1].Pending != 3 || nodes[0].Cap != 100 || nodes[0].URL != "ws://127.0.0.1:9001/ws" || !nodes[0].Alive {
		t.Errorf("nodes = %+v, want 3 pending in total", nodes)
	}
}

func TestHealthMetricsAndRotation(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.connect(t, nil, goodLogin, nil)
	ts.connect(t, nil, `{"username":"alice","password":"x"}`, nil)

	resp, err := http.Get(ts.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	resp, err = http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`wsdirect_auth_requests_total{result="ok"} 1`,
		`wsdirect_auth_requests_total{result="invalid_credentials"} 1`,
		`wsdirect_auth_requests_total{result="no_capacity"} 0`,
		`wsdirect_auth_assignments_total{node="node-`,
		`wsdirect_auth_pick_seconds_count 1`,
		`wsdirect_auth_nodes_available 2`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Rotation: tokens minted after SetSigner carry the new kid and verify
	// on nodes that trust both keys.
	_, priv2, _ := token.GenerateKey()
	s2 := token.NewSigner(priv2)
	ts.SetSigner(s2)
	_, data := ts.connect(t, nil, goodLogin, nil)
	var cr wire.ConnectResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		t.Fatal(err)
	}
	both := token.KeySet{}
	both.Add(ts.signer.PublicKey())
	both.Add(s2.PublicKey())
	if _, err := token.NewVerifier(cr.NodeID, both).Verify(cr.Token); err != nil {
		t.Errorf("rotated token: %v", err)
	}
	oldOnly := token.KeySet{}
	oldOnly.Add(ts.signer.PublicKey())
	if _, err := token.NewVerifier(cr.NodeID, oldOnly).Verify(cr.Token); token.ReasonOf(err) != token.ReasonUnknownKey {
		t.Errorf("rotated token on a node without the new key: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	_, priv, _ := token.GenerateKey()
	base := func() *Config {
		c := DefaultConfig()
		c.Signer, c.Credentials, c.View = token.NewSigner(priv), failingAuth{}, &fakeView{}
		return c
	}
	// Each case names the field the error must name: New fills nothing in.
	for field, mod := range map[string]func(*Config){
		"Signer":        func(c *Config) { c.Signer = nil },
		"Credentials":   func(c *Config) { c.Credentials = nil },
		"View":          func(c *Config) { c.View = nil },
		"LoginRate":     func(c *Config) { c.LoginRate = 0 },
		"LoginBurst":    func(c *Config) { c.LoginBurst = 0 },
		"MaxTrackedIPs": func(c *Config) { c.MaxTrackedIPs = 0 },
		"PendingSettle": func(c *Config) { c.PendingSettle = -time.Second },
		"AuthInstances": func(c *Config) { c.AuthInstances = -1 },
		"RetryAfter":    func(c *Config) { c.RetryAfter = 0 },
	} {
		c := base()
		mod(c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
	// Zero is a setting for these, and nil collaborators have a meaning.
	c := base()
	c.PendingSettle, c.AuthInstances, c.AdminToken = 0, 0, ""
	c.Logger, c.Registry, c.Rand, c.Now, c.Picker = nil, nil, nil, nil, nil
	if _, err := New(c); err != nil {
		t.Errorf("zero settle, counted instances, nil collaborators: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Error("nil config: no error")
	}
	if s, err := New(base()); err != nil || s == nil {
		t.Errorf("valid config: %v", err)
	}
}

// memberView also lists members, as a *cluster.Cluster does.
type memberView struct {
	fakeView
	members []cluster.Member
}

func (v *memberView) Members() []cluster.Member { return v.members }

func TestAuthInstancesFromView(t *testing.T) {
	auth := func(name string, alive bool) cluster.Member {
		return cluster.Member{Name: name, Role: cluster.RoleAuth, Alive: alive}
	}
	v := &memberView{members: []cluster.Member{auth("a1", true), auth("a2", true), auth("a3", false), member("n", 0, 10)}}
	v.set(member("n", 0, 10))
	ts := newTestServer(t, func(c *Config) { c.View = v })
	ts.connect(t, nil, goodLogin, nil)
	ts.p2c.mu.Lock()
	peers := ts.p2c.peers
	ts.p2c.mu.Unlock()
	if peers != 2 {
		t.Errorf("peers = %v, want the 2 alive auth members", peers)
	}
}

// TestSeveralInstances runs three auth servers over one view, as three
// processes sharing only the gossip view would, with concurrent clients.
func TestSeveralInstances(t *testing.T) {
	view := &fakeView{}
	var nodes []cluster.Member
	for i := 0; i < 4; i++ {
		nodes = append(nodes, member(fmt.Sprintf("n%d", i), 0, 1000))
	}
	view.set(nodes...)
	var servers []*testServer
	for i := 0; i < 3; i++ {
		servers = append(servers, newTestServer(t, func(c *Config) { c.View = view; c.Rand = seeded(uint64(i) + 10) }))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	perNode := map[string]int{}
	tokens := map[string]bool{}
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, data := servers[i%3].connect(t, nil, goodLogin, nil)
			var cr wire.ConnectResponse
			if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &cr) != nil {
				t.Errorf("status %d %s", resp.StatusCode, data)
				return
			}
			mu.Lock()
			perNode[cr.NodeID]++
			tokens[cr.Token] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(tokens) != 60 {
		t.Errorf("%d distinct tokens, want 60", len(tokens))
	}
	// Each instance spreads its 20 over 4 nodes by pending accounting.
	for _, m := range nodes {
		if perNode[m.Name] < 12 || perNode[m.Name] > 18 {
			t.Errorf("per node %v, want about 15 each", perNode)
			break
		}
	}
}

// TestConnectRebalanced: a client that says a node moved it goes to the
// least loaded node (two random choices would pick node-mid whenever the
// draw is node-busy and node-mid, a third of the time), gets a token
// marked Rebalanced, and is counted apart; a plain connect gets no mark.
func TestConnectRebalanced(t *testing.T) {
	ts := newTestServer(t, nil)
	busy, mid, idle := member("node-busy", 80, 100), member("node-mid", 50, 100), member("node-idle", 10, 100)
	busy.Port, mid.Port, idle.Port = 9001, 9002, 9003
	ts.view.set(busy, mid, idle)
	keys := token.KeySet{}
	keys.Add(ts.signer.PublicKey())
	for i := 0; i < 10; i++ {
		resp, data := ts.connect(t, nil, `{"username":"alice","password":"s3cret","reason":"rebalance"}`, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, data)
		}
		var cr wire.ConnectResponse
		if err := json.Unmarshal(data, &cr); err != nil {
			t.Fatal(err)
		}
		if cr.NodeID != "node-idle" {
			t.Fatalf("moved client sent to %s", cr.NodeID)
		}
		c, err := token.NewVerifier(cr.NodeID, keys).Verify(cr.Token)
		if err != nil || !c.Rebalanced {
			t.Fatalf("moved client's token: %+v, %v; want Rebalanced", c, err)
		}
	}
	_, data := ts.connect(t, nil, goodLogin, nil)
	var cr wire.ConnectResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		t.Fatal(err)
	}
	if c, err := token.NewVerifier(cr.NodeID, keys).Verify(cr.Token); err != nil || c.Rebalanced {
		t.Fatalf("plain client's token: %+v, %v; want no mark", c, err)
	}
	if resp, _ := ts.connect(t, nil, `{"username":"alice","password":"s3cret","reason":"other"}`, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown reason: %d, want 400", resp.StatusCode)
	}
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`wsdirect_auth_rebalance_requests_total{result="ok"} 10`,
		`wsdirect_auth_requests_total{result="ok"} 11`,
		`wsdirect_auth_requests_total{result="bad_request"} 1`,
		`wsdirect_auth_rebalance_requests_total{result="bad_request"} 0`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
