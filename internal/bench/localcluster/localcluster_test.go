package localcluster

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

func startCluster(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binaries")
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if err := BuildBinaries(ctx, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built binaries in %v", time.Since(start).Round(time.Millisecond))
	cfg.BinDir = bin
	cfg.Dir = t.TempDir()
	cfg.Logf = t.Logf
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func echo(t *testing.T, conn *websocket.Conn, msg string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_, data, err := conn.ReadMessage()
	if err != nil || string(data) != msg {
		t.Fatalf("echo = %q, %v", data, err)
	}
}

// TestClusterLifecycle runs auth and two real nodes over TLS (auth on
// https://, nodes on wss://, certificates from the run's test CA): a client
// connects through auth, an auth restart leaves its connection alone, a
// killed node leaves assignment, and Stop leaves no process behind.
func TestClusterLifecycle(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.TLS = 2, true
	c := startCluster(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	creds := client.Credentials{Username: c.Username(), Password: c.Password()}
	if !strings.HasPrefix(c.AuthURL(), "https://") {
		t.Fatalf("auth URL %s", c.AuthURL())
	}
	pool, err := client.LoadRootCAs(c.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	trust := client.WithRootCAs(pool)

	for _, f := range []string{"signing.key", "signing.pub", "gossip.key", "users", "admin.token"} {
		if _, err := os.Stat(filepath.Join(c.Dir(), f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if _, _, err := client.Dial(ctx, c.AuthURL(), client.Credentials{Username: c.Username(), Password: "wrong"}, trust); err == nil {
		t.Error("wrong password accepted")
	}

	conn, resp, err := client.Dial(ctx, c.AuthURL(), creds, trust)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if !strings.HasPrefix(resp.URL, "wss://") {
		t.Fatalf("node URL %s", resp.URL)
	}
	defer conn.Close()
	echo(t, conn, "hello")
	served := c.NodeIndex(resp.NodeID)
	if served < 0 {
		t.Fatalf("assigned to unknown node %q", resp.NodeID)
	}
	for _, p := range append(c.Nodes, c.Auths...) {
		if rss, err := p.RSS(); err != nil || rss <= 0 {
			t.Errorf("%s RSS = %d, %v", p.Name, rss, err)
		}
	}

	// Restarting auth leaves existing connections untouched.
	restart := time.Now()
	if err := c.RestartAuth(ctx, 0); err != nil {
		t.Fatalf("RestartAuth: %v", err)
	}
	t.Logf("auth restarted in %v", time.Since(restart).Round(time.Millisecond))
	echo(t, conn, "still here")

	// Kill the other node: auth stops assigning it.
	other := 1 - served
	killed := c.Nodes[other].Name
	start := time.Now()
	if err := c.Kill(other); err != nil {
		t.Fatal(err)
	}
	err = c.WaitNodes(ctx, 0, func(nodes []wire.NodeStatus) bool {
		for _, n := range nodes {
			if n.ID == killed && n.Alive {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("killed node still alive in auth's view: %v", err)
	}
	t.Logf("killed node out of assignment after %v", time.Since(start).Round(time.Millisecond))
	for i := 0; i < 5; i++ {
		conn2, resp2, err := client.Dial(ctx, c.AuthURL(), creds, trust)
		if err != nil {
			t.Fatalf("Dial after kill: %v", err)
		}
		conn2.Close()
		if resp2.NodeID == killed {
			t.Fatalf("assigned to killed node %s", killed)
		}
	}

	// Drain the serving node: our client is told to reconnect elsewhere
	// (4000) and the node exits on its own.
	if err := c.Drain(served); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != wire.CloseDraining {
		t.Errorf("drained client read: %v, want close %d", err, wire.CloseDraining)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := c.Nodes[served].Wait(wctx); errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%s still running 30s after SIGTERM", c.Nodes[served].Name)
	}

	pids := []int{}
	for _, p := range append(c.Nodes, c.Auths...) {
		if pid := p.PID(); pid != 0 && p.Running() {
			pids = append(pids, pid)
		}
	}
	stop := time.Now()
	c.Stop()
	t.Logf("stopped in %v", time.Since(stop).Round(time.Millisecond))
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still exists after Stop (err %v)", pid, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := Start(context.Background(), DefaultConfig()); err == nil || !strings.Contains(err.Error(), "BinDir is required") {
		t.Errorf("missing BinDir: %v", err)
	}
	noBinaries := DefaultConfig()
	noBinaries.BinDir = t.TempDir()
	if _, err := Start(context.Background(), noBinaries); err == nil {
		t.Error("BinDir without binaries accepted")
	}
	// Placeholder binaries: validation only looks for the files.
	bin := t.TempDir()
	for _, b := range []string{NodeBinary, AuthBinary} {
		if err := os.WriteFile(filepath.Join(bin, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	good := DefaultConfig()
	good.BinDir = bin
	if err := good.validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	// Each key is the field the error must name: Start fills nothing in.
	for field, mod := range map[string]func(*Config){
		"Nodes":        func(c *Config) { c.Nodes = 0 },
		"Auths":        func(c *Config) { c.Auths = 0 },
		"NodeIPBase":   func(c *Config) { c.NodeIPBase = netip.Addr{} },
		"AuthIPBase":   func(c *Config) { c.AuthIPBase = netip.MustParseAddr("10.0.0.1") },
		"MaxConns":     func(c *Config) { c.MaxConns = -1 },
		"Username":     func(c *Config) { c.Username = "" },
		"BcryptCost":   func(c *Config) { c.BcryptCost = 0 },
		"LoginRate":    func(c *Config) { c.LoginRate = 0 },
		"LoginBurst":   func(c *Config) { c.LoginBurst = 0 },
		"LogLevel":     func(c *Config) { c.LogLevel = "" },
		"ReadyTimeout": func(c *Config) { c.ReadyTimeout = 0 },
	} {
		c := good
		mod(&c)
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
}

func TestProcStatusBytes(t *testing.T) {
	rss, err := ProcRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("ProcRSS(self) = %d, %v", rss, err)
	}
	if _, err := ProcStatusBytes(os.Getpid(), "NoSuchField"); err == nil {
		t.Error("missing field accepted")
	}
}

func TestDecodeNodes(t *testing.T) {
	for _, in := range []string{`[{"id":"node-1","alive":true}]`, `{"nodes":[{"id":"node-1","alive":true}]}`} {
		nodes, err := decodeNodes([]byte(in))
		if err != nil || len(nodes) != 1 || nodes[0].ID != "node-1" || !nodes[0].Alive {
			t.Errorf("decodeNodes(%s) = %+v, %v", in, nodes, err)
		}
	}
	if _, err := decodeNodes([]byte(`"x"`)); err == nil {
		t.Error("garbage accepted")
	}
}
