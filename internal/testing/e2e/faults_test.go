package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

const fleetSize = 60

// assignsNever asks auth for k assignments (without connecting) and fails
// if any names node.
func assignsNever(t *testing.T, authURL, node string, k int) {
	t.Helper()
	opts := clientOptions(4)
	for i := 0; i < k; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := client.Authorize(ctx, authURL, creds, opts...)
		cancel()
		if err != nil {
			t.Fatalf("authorize %d: %v", i, err)
		}
		if resp.NodeID == node {
			t.Fatalf("auth assigned %s (assignment %d of %d)", node, i+1, k)
		}
	}
}

// TestDrainMovesClients drains one node: each of its Managed clients gets
// the drain close code and reconnects elsewhere, none is lost, everyone's
// echo still works, and auth stops assigning the drained node.
func TestDrainMovesClients(t *testing.T) {
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes = 3 })
	f := startFleet(t, c.AuthURL(0), fleetSize, 20*time.Second)
	victim := c.Node(0)
	onVictim := f.byNode()[victim.Name]
	if len(onVictim) == 0 {
		t.Fatalf("no client on %s: %v", victim.Name, c.ConnsByNode())
	}
	t.Logf("%d of %d clients on %s before the drain", len(onVictim), fleetSize, victim.Name)

	start := time.Now()
	if err := c.DrainNode(0, 15*time.Second); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if n := victim.Conns(); n != 0 {
		t.Fatalf("drained node still holds %d connections", n)
	}
	probe.Until(t, 30*time.Second, fmt.Sprintf("all %d clients connected away from %s", fleetSize, victim.Name), func() error {
		return probe.Check(f.connected() == fleetSize && len(f.byNode()[victim.Name]) == 0,
			"connected %d, by node %v", f.connected(), c.ConnsByNode())
	})
	t.Logf("all clients moved within %v; now %v", time.Since(start).Round(time.Millisecond), c.ConnsByNode())

	for _, mc := range onVictim {
		if code := mc.lastClose.Load(); mc.disconnects.Load() != 1 {
			t.Errorf("a drained client saw %d disconnects (last code %d), want 1", mc.disconnects.Load(), code)
		}
	}
	if errs := f.failed(); len(errs) > 0 {
		t.Fatalf("%d clients gave up, e.g. %v", len(errs), errs[0])
	}
	if err := f.echoAll(5 * time.Second); err != nil {
		t.Fatalf("echo after drain: %v", err)
	}
	total := 0
	for _, n := range c.Nodes() {
		total += n.Conns()
	}
	if total != fleetSize {
		t.Errorf("nodes hold %d connections, want %d: %v", total, fleetSize, c.ConnsByNode())
	}

	// The draining flag is in every auth's view, and auth acts on it.
	c.WaitAuthViews(5*time.Second, "auth sees the node draining", func(view []cluster.Member) bool {
		for _, m := range view {
			if m.Name == victim.Name && !m.Draining {
				return false
			}
		}
		return true
	})
	assignsNever(t, c.AuthURL(0), victim.Name, 100)
}

// TestDrainCloseCode checks that a drained client is told to go elsewhere
// with wire.CloseDraining.
func TestDrainCloseCode(t *testing.T) {
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := client.Dial(ctx, c.AuthURL(0), creds, clientOptions(2)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() { done <- c.DrainNode(0, 10*time.Second) }()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = conn.ReadMessage()
	code := -1
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		code = ce.Code
	}
	if code != wire.CloseDraining {
		t.Fatalf("drain closed the connection with %v (code %d), want %d", err, code, wire.CloseDraining)
	}
	if !wire.ShouldReconnect(code) {
		t.Fatalf("drain code %d does not say reconnect", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("drain: %v", err)
	}
}

// TestKilledNodeLeavesAssignment crashes a node (sockets reset, no serf
// leave): auth stops assigning it once failure detection notices, within a
// bound, and its clients reconnect to the survivors.
func TestKilledNodeLeavesAssignment(t *testing.T) {
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes, o.ClusterConfig = 3, testcluster.QuickFailureDetection })
	f := startFleet(t, c.AuthURL(0), fleetSize, 20*time.Second)
	victim := c.Node(0)
	onVictim := len(f.byNode()[victim.Name])
	if onVictim == 0 {
		t.Fatalf("no client on %s: %v", victim.Name, c.ConnsByNode())
	}

	start := time.Now()
	c.KillNode(0)
	c.WaitAuthViews(30*time.Second, "auth drops the killed node", func(view []cluster.Member) bool {
		for _, m := range view {
			if m.Name == victim.Name {
				return false
			}
		}
		return true
	})
	removed := time.Since(start)
	probe.Until(t, 30*time.Second, fmt.Sprintf("all %d clients connected to survivors", fleetSize), func() error {
		return probe.Check(f.connected() == fleetSize && len(f.byNode()[victim.Name]) == 0,
			"connected %d, by node %v", f.connected(), c.ConnsByNode())
	})
	t.Logf("killed %s holding %d clients: out of assignment after %v, all reconnected after %v",
		victim.Name, onVictim, removed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	if errs := f.failed(); len(errs) > 0 {
		t.Fatalf("%d clients gave up, e.g. %v", len(errs), errs[0])
	}
	if err := f.echoAll(5 * time.Second); err != nil {
		t.Fatalf("echo after kill: %v", err)
	}
	survivors := 0
	for _, n := range c.Nodes()[1:] {
		survivors += n.Conns()
	}
	if survivors != fleetSize {
		t.Errorf("survivors hold %d, want %d: %v", survivors, fleetSize, c.ConnsByNode())
	}
	assignsNever(t, c.AuthURL(0), victim.Name, 100)
}

// TestAuthRestartKeepsConnections restarts the auth instance under live
// clients: no WebSocket is disturbed, echo still works, and new clients
// connect once auth is back.
func TestAuthRestartKeepsConnections(t *testing.T) {
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes = 3 })
	f := startFleet(t, c.AuthURL(0), fleetSize/2, 20*time.Second)
	before := c.ConnsByNode()

	c.RestartAuth(0)

	// Give a disturbed connection time to show.
	time.Sleep(500 * time.Millisecond)
	for i, mc := range f.clients {
		if d := mc.disconnects.Load(); d != 0 {
			t.Errorf("client %d disconnected %d times (last code %d) during the auth restart", i, d, mc.lastClose.Load())
		}
		if n := mc.connects.Load(); n != 1 {
			t.Errorf("client %d connected %d times, want 1", i, n)
		}
	}
	if after := c.ConnsByNode(); !equalCounts(before, after) {
		t.Errorf("node counts changed across the auth restart: %v -> %v", before, after)
	}
	if err := f.echoAll(5 * time.Second); err != nil {
		t.Fatalf("echo after auth restart: %v", err)
	}

	// The restarted auth relearns the counts over gossip and serves again.
	c.WaitAuthViews(10*time.Second, "restarted auth relearns every count", func(view []cluster.Member) bool {
		return equalCounts(before, viewConns(view))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := client.Dial(ctx, c.AuthURL(0), creds, clientOptions(2)...)
	if err != nil {
		t.Fatalf("new connect after auth restart: %v", err)
	}
	defer conn.Close()
	if got, err := roundTrip(conn, "after-restart", roundTripTimeout); err != nil || got != "after-restart" {
		t.Fatalf("echo on new connection via %s: %q, %v", resp.NodeID, got, err)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
