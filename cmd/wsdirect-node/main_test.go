package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/logcheck"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/userdata"
	"github.com/wsdirect/terraform-provider-wsdirect/node"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harness struct {
	t      *testing.T
	dir    string
	signer *token.Signer
	addr   string
	sigs   chan os.Signal
	exit   chan int
	logs   *lockedBuffer
	toks   []string
	args   []string
	client *tls.Config   // nil: plain http and ws
	ready  time.Duration // bound of the wait for /readyz
}

// start runs the node binary's run() in-process with a fresh key pair in a
// key directory, an admin token file and extra flags.
func start(t *testing.T, extra ...string) *harness {
	t.Helper()
	return startWith(t, hopts{}, extra...)
}

// hopts vary the harness: bind is the -bind address (default 127.0.0.1 and
// a free port); with client set the node is reached over https/wss with
// that configuration; ready bounds the wait for /readyz (default 20 s).
type hopts struct {
	bind   string
	client *tls.Config
	ready  time.Duration
}

func startWith(t *testing.T, o hopts, extra ...string) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), sigs: make(chan os.Signal, 2), exit: make(chan int, 1), logs: &lockedBuffer{}, client: o.client, ready: o.ready}
	if h.ready == 0 {
		h.ready = 20 * time.Second
	}
	_, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(h.dir, "keys")
	if err := os.Mkdir(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := token.WriteKeyPair(filepath.Join(h.dir, "signing.key"), filepath.Join(keys, "signing.pub"), priv); err != nil {
		t.Fatal(err)
	}
	h.signer = token.NewSigner(priv)
	if err := os.WriteFile(filepath.Join(h.dir, "admin"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.addr = o.bind
	if h.addr == "" {
		h.addr = "127.0.0.1:" + strconv.Itoa(probe.LoopbackPort(t))
	}
	args := append([]string{
		"-name", "n1", "-bind", h.addr, "-gossip-bind", "127.0.0.1:0", "-dev",
		"-auth-keys", keys, "-admin-token-file", filepath.Join(h.dir, "admin"),
		"-drain-deadline", "3s", "-log-level", "debug",
		// One host, one clock: no skew to allow for, so tokens minted right
		// after the start are accepted at once.
		"-token-leeway", "0s",
	}, extra...)
	h.args = args
	h.run()
	t.Cleanup(func() {
		select {
		case h.sigs <- syscall.SIGTERM:
		default:
		}
		select {
		case <-h.exit:
		case <-time.After(15 * time.Second):
			t.Error("node did not exit")
		}
		logs := h.logs.String()
		for _, tok := range h.toks {
			if strings.Contains(logs, tok) {
				t.Error("a token was logged")
			}
		}
		// Every run's lines, TLS modes included: one JSON object each, no
		// key twice.
		if _, err := logcheck.Lines([]byte(logs)); err != nil {
			t.Error(err)
		}
	})
	return h
}

// run starts run() with h.args and waits until the node is ready.
func (h *harness) run() {
	t := h.t
	t.Helper()
	go func() { h.exit <- run(context.Background(), h.args, h.sigs, h.logs) }()
	hc := h.httpClient()
	probe.Until(t, h.ready, "the node to be ready", func() error {
		select {
		case code := <-h.exit:
			h.exit <- code // for Cleanup
			return probe.Stop(fmt.Errorf("the node exited with %d: %s", code, h.logs.String()))
		default:
		}
		resp, err := hc.Get(h.httpURL("/readyz"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return probe.Equal("/readyz status", resp.StatusCode, http.StatusOK)
	})
}

// restart stops the node with SIGTERM and starts it again with the same
// flags, keys and address: a new process as far as the node knows.
func (h *harness) restart() {
	h.t.Helper()
	h.sigs <- syscall.SIGTERM
	if code := h.waitExit(15 * time.Second); code != 0 {
		h.t.Fatalf("exit %d before the restart", code)
	}
	<-h.exit // waitExit left the code for Cleanup
	// A fresh signal channel: the old process's signal goroutine may still
	// be reading the old one (a process would have exited).
	h.sigs = make(chan os.Signal, 2)
	h.run()
}

// httpClient reaches the node's HTTP endpoints, over TLS when it serves it.
func (h *harness) httpClient() *http.Client {
	if h.client == nil {
		return http.DefaultClient
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: h.client}}
}

func (h *harness) httpURL(path string) string {
	if h.client == nil {
		return "http://" + h.addr + path
	}
	return "https://" + h.addr + path
}

func (h *harness) dial(s *token.Signer) (*websocket.Conn, error) {
	ws, _, err := h.dialToken(h.mint(s))
	return ws, err
}

func (h *harness) mint(s *token.Signer) string {
	tok, _, err := s.Mint("alice", "n1")
	if err != nil {
		h.t.Fatal(err)
	}
	h.toks = append(h.toks, tok)
	return tok
}

// dialToken presents tok; on refusal it returns the JSON error code.
func (h *harness) dialToken(tok string) (*websocket.Conn, string, error) {
	d, scheme := *websocket.DefaultDialer, "ws://"
	if h.client != nil {
		d.TLSClientConfig, scheme = h.client, "wss://"
	}
	ws, resp, err := d.Dial(scheme+h.addr+wire.WSPath+"?token="+tok, nil)
	code := ""
	if resp != nil && err != nil {
		var we wire.Error
		if json.NewDecoder(resp.Body).Decode(&we) == nil {
			code = we.Code
		}
	}
	return ws, code, err
}

func (h *harness) waitExit(within time.Duration) int {
	h.t.Helper()
	select {
	case code := <-h.exit:
		h.exit <- code // for Cleanup
		return code
	case <-time.After(within):
		h.t.Fatalf("node did not exit within %s\n%s", within, h.logs.String())
		return -1
	}
}

func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := token.GenerateKey()
	pub := filepath.Join(dir, "s.pub")
	if err := token.WriteKeyPair(filepath.Join(dir, "s.key"), pub, priv); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		args []string
		code int
		msg  string
	}{
		"no auth keys":        {[]string{"-dev"}, 2, "-auth-keys is required"},
		"no gossip key":       {[]string{"-auth-keys", pub}, 2, "-gossip-key-file is required"},
		"bad level":           {[]string{"-dev", "-auth-keys", pub, "-log-level", "loud"}, 2, "-log-level"},
		"bad cap":             {[]string{"-dev", "-auth-keys", pub, "-max-conns", "0"}, 2, "-max-conns"},
		"missing key file":    {[]string{"-dev", "-auth-keys", filepath.Join(dir, "nope.pub")}, 1, "-auth-keys"},
		"wildcard, no advert": {[]string{"-dev", "-auth-keys", pub, "-bind", "0.0.0.0:0", "-gossip-bind", "127.0.0.1:0"}, 1, "-advertise is required"},
		"bad ec2 tag":         {[]string{"-dev", "-auth-keys", pub, "-bind", "127.0.0.1:0", "-join-ec2-tag", "novalue"}, 2, "-join-ec2-tag"},
		"bad gossip key":      {[]string{"-auth-keys", pub, "-gossip-key-file", pub}, 1, "gossip key"},
		"bad rebalance rate":  {[]string{"-dev", "-auth-keys", pub, "-rebalance-max-rate", "0"}, 2, "-rebalance-max-rate"},
		"bad tolerance":       {[]string{"-dev", "-auth-keys", pub, "-rebalance-tolerance", "1"}, 2, "-rebalance-tolerance"},
		"bad min move":        {[]string{"-dev", "-auth-keys", pub, "-rebalance-min-move", "0"}, 2, "-rebalance-min-move"},
		"bad drain rate":      {[]string{"-dev", "-auth-keys", pub, "-drain-rate", "0.5"}, 2, "-drain-rate"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out lockedBuffer
			code := run(context.Background(), tc.args, make(chan os.Signal), &out)
			if code != tc.code || !strings.Contains(out.String(), tc.msg) {
				t.Fatalf("exit %d, output %q; want %d containing %q", code, out.String(), tc.code, tc.msg)
			}
		})
	}
}

// TestDrainSteps: the drain rate becomes batches every 100 ms, or single
// closes further apart, and the default is node.DefaultConfig's.
func TestDrainSteps(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		batch int
		pause time.Duration
	}{{5000, 500, 100 * time.Millisecond}, {50, 5, 100 * time.Millisecond}, {10, 1, 100 * time.Millisecond}, {4, 1, 250 * time.Millisecond}, {1, 1, time.Second}} {
		if b, p := drainSteps(tc.rate); b != tc.batch || p != tc.pause {
			t.Errorf("drainSteps(%g) = %d every %v, want %d every %v", tc.rate, b, p, tc.batch, tc.pause)
		}
	}
	def := node.DefaultConfig()
	if b, p := drainSteps(float64(def.DrainBatch) / def.DrainInterval.Seconds()); b != def.DrainBatch || p != def.DrainInterval {
		t.Errorf("the default rate gives %d every %v, want node.DefaultConfig's %d every %v", b, p, def.DrainBatch, def.DrainInterval)
	}
}

// TestSignalDrainAndReload: echo works, SIGHUP picks up a new key, SIGTERM
// closes clients with 4000 and exits 0 within the drain deadline.
func TestSignalDrainAndReload(t *testing.T) {
	h := start(t)
	ws, err := h.dial(h.signer)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := ws.ReadMessage(); err != nil || string(m) != "ping" {
		t.Fatalf("echo %q %v", m, err)
	}

	// Rotation: a new key is trusted only after SIGHUP.
	_, priv2, _ := token.GenerateKey()
	next := token.NewSigner(priv2)
	if _, err := h.dial(next); err == nil {
		t.Fatal("untrusted key accepted")
	}
	if err := token.WriteKeyPair(filepath.Join(h.dir, "next.key"), filepath.Join(h.dir, "keys", "next.pub"), priv2); err != nil {
		t.Fatal(err)
	}
	h.sigs <- syscall.SIGHUP
	var ws2 *websocket.Conn
	probe.Until(t, 10*time.Second, "the new key to be accepted after SIGHUP", func() error {
		ws2, err = h.dial(next)
		return err
	})
	defer ws2.Close()

	start := time.Now()
	h.sigs <- syscall.SIGTERM
	for _, c := range []*websocket.Conn{ws, ws2} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		ce, ok := err.(*websocket.CloseError)
		if !ok || ce.Code != wire.CloseDraining {
			t.Fatalf("client got %v, want close %d", err, wire.CloseDraining)
		}
	}
	if code := h.waitExit(3*time.Second + 8*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, h.logs.String())
	}
	t.Logf("drained and exited in %s", time.Since(start))
}

// TestStopFitsTheUnit: a scale-in's SIGTERM with clients that never answer
// the close frame (a stalled phone, a dead NAT entry). The drain gives up
// at -drain-deadline and cuts them, and the whole stop (leave, shutdown)
// ends within the margin the cloud-init unit adds to the deadline for
// systemd's TimeoutStopSec, so systemd never has to SIGKILL the node.
func TestStopFitsTheUnit(t *testing.T) {
	const deadline = 2 * time.Second
	h := start(t, "-drain-deadline", deadline.String())
	var stuck []*websocket.Conn
	for i := 0; i < 5; i++ {
		ws, err := h.dial(h.signer)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		stuck = append(stuck, ws) // never read: the close is never answered
	}
	begin := time.Now()
	h.sigs <- syscall.SIGTERM
	if code := h.waitExit(deadline + userdata.StopMargin); code != 0 {
		t.Fatalf("exit %d\n%s", code, h.logs.String())
	}
	took := time.Since(begin)
	if took < deadline {
		t.Fatalf("exited after %s, before the drain deadline %s: the clients were not waited for", took, deadline)
	}
	if !strings.Contains(h.logs.String(), "drain incomplete") {
		t.Fatalf("the drain did not hit its deadline:\n%s", h.logs.String())
	}
	// The clients got the drain code before they were cut.
	for _, ws := range stuck {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := ws.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != wire.CloseDraining {
			t.Fatalf("stuck client read %v, want close %d", err, wire.CloseDraining)
		}
	}
	t.Logf("stopped %s after SIGTERM (deadline %s, unit allows %s)", took.Round(time.Millisecond), deadline, deadline+userdata.StopMargin)
}

func TestAdminDrainExits(t *testing.T) {
	h := start(t)
	ws, err := h.dial(h.signer)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	req, _ := http.NewRequest("POST", "http://"+h.addr+"/admin/drain", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated drain: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", "http://"+h.addr+"/admin/drain", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("drain: %d", resp.StatusCode)
	}
	if code := h.waitExit(12 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestPublishesToCluster: a node started with -join shows up in another
// member's view with its address, cap and live count, turns draining on
// SIGTERM and then leaves.
func TestPublishesToCluster(t *testing.T) {
	cc := cluster.LocalConfig()
	cc.Name = "observer"
	cc.Role = cluster.RoleAuth
	cc.Dev = true
	obs, err := cluster.Create(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Shutdown()
	h := start(t, "-join", obs.GossipAddr(), "-max-conns", "77", "-zone", "z1")

	find := func() (cluster.Member, bool) {
		for _, m := range obs.Members() {
			if m.Name == "n1" {
				return m, true
			}
		}
		return cluster.Member{}, false
	}
	waitFor := func(what string, cond func(cluster.Member) bool) {
		t.Helper()
		probe.Until(t, 10*time.Second, "the observer to see "+what, func() error {
			m, ok := find()
			return probe.Check(ok && cond(m), "n1 known %t as %+v", ok, m)
		})
	}
	waitFor("the node", func(m cluster.Member) bool {
		return m.Alive && m.Role == cluster.RoleNode && m.Cap == 77 && m.Zone == "z1" && m.URL() == "ws://"+h.addr+"/ws"
	})
	ws, err := h.dial(h.signer)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	waitFor("conns=1", func(m cluster.Member) bool { return m.Conns == 1 })

	h.sigs <- syscall.SIGTERM
	if code := h.waitExit(12 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	waitFor("the node gone", func(m cluster.Member) bool { return !m.Alive })
}

// TestFileLimitWarning: a cap the open-file limit cannot reach is logged at
// start-up, and a reachable one is not.
func TestFileLimitWarning(t *testing.T) {
	limit, known := openFileLimit()
	if !known {
		t.Skip("no RLIMIT_NOFILE here")
	}
	over := start(t, "-max-conns", strconv.FormatUint(limit, 10))
	if !strings.Contains(over.logs.String(), "open-file limit") {
		t.Errorf("no warning for -max-conns %d with nofile %d:\n%s", limit, limit, over.logs.String())
	}
	under := start(t, "-max-conns", strconv.FormatUint(limit-fileReserve, 10))
	if strings.Contains(under.logs.String(), "open-file limit") {
		t.Errorf("warning for -max-conns %d with nofile %d", limit-fileReserve, limit)
	}
}

// TestLogLines: a node's whole life (start, join, a client, SIGHUP, drain,
// leave) logs only JSON lines, none with a key twice. The node and cluster
// packages add their own keys (node=, component=cluster), so the command
// must not add them again.
func TestLogLines(t *testing.T) {
	cc := cluster.LocalConfig()
	cc.Name, cc.Role, cc.Dev = "observer", cluster.RoleAuth, true
	obs, err := cluster.Create(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Shutdown()
	h := start(t, "-join", obs.GossipAddr()) // at -log-level debug
	ws, err := h.dial(h.signer)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	h.sigs <- syscall.SIGHUP
	h.sigs <- syscall.SIGTERM
	if code := h.waitExit(12 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	logs := h.logs.String()
	n, err := logcheck.Lines([]byte(logs))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"msg":"serving"`, `"msg":"joined cluster"`, `"msg":"SIGHUP: auth keys reloaded"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %s line among %d:\n%s", want, n, logs)
		}
	}
	t.Logf("%d log lines checked", n)
}

// TestReplayAfterRestart: a token used before the node restarted is refused
// after it (issued_before_start), although the new process's replay cache
// has never seen it; a token minted after the restart connects.
func TestReplayAfterRestart(t *testing.T) {
	h := start(t)
	tok := h.mint(h.signer)
	ws, _, err := h.dialToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()
	if _, code, err := h.dialToken(tok); err == nil || code != string(token.ReasonReplayed) {
		t.Fatalf("replay on the same process: %v %q, want refused as replayed", err, code)
	}
	h.restart()
	if ws, code, err := h.dialToken(tok); err == nil {
		ws.Close()
		t.Fatal("a token used before the restart connected again after it")
	} else if code != string(token.ReasonBeforeStart) {
		t.Fatalf("replay after the restart: %v %q, want %q", err, code, token.ReasonBeforeStart)
	}
	ws, err = h.dial(h.signer)
	if err != nil {
		t.Fatalf("a fresh token after the restart: %v", err)
	}
	ws.Close()
}

// TestJoinsOnceTokensAreAccepted: a node refuses tokens issued before its
// start plus -token-leeway, so it joins the cluster only then: the first
// moment auth can hear of it and send it clients, a token minted for it is
// accepted.
func TestJoinsOnceTokensAreAccepted(t *testing.T) {
	const leeway = 1500 * time.Millisecond
	cc := cluster.LocalConfig()
	cc.Name = "observer"
	cc.Role = cluster.RoleAuth
	cc.Dev = true
	obs, err := cluster.Create(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Shutdown()
	begin := time.Now()
	h := start(t, "-join", obs.GossipAddr(), "-token-leeway", leeway.String())
	deadline := time.Now().Add(15 * time.Second)
	for {
		seen := false
		for _, m := range obs.Nodes() {
			seen = seen || m.Name == "n1"
		}
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node never joined")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(begin); took < leeway {
		t.Fatalf("the node joined %s after it was started, before its leeway of %s had passed", took, leeway)
	}
	ws, err := h.dial(h.signer)
	if err != nil {
		t.Fatalf("a token minted once the node was in the view: %v", err)
	}
	ws.Close()
}
