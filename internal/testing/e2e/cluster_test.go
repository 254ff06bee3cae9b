package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// TestClusterServesAssignments connects clients through auth and checks,
// from the server side, that each is served by the node auth named: every
// node relays to its own upstream, which tags answers with the node's name
// and the user the node authenticated. Per-node counts must match the
// assignments exactly, sum to N, be balanced, and reach auth over gossip.
func TestClusterServesAssignments(t *testing.T) {
	const clients = 300
	c := startCluster(t, func(o *testcluster.Options) {
		o.Nodes = 3
		o.UpstreamFor = func(_ int, name string) string {
			return taggingUpstream(t, name)
		}
	})
	opts := clientOptions(32)

	type result struct {
		conn *websocket.Conn
		node string
	}
	results := make([]result, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			// Generous, like clientOptions' own timeouts: every server and
			// all 300 clients share this one -race process, and on a busy
			// machine a handshake (bcrypt, upgrade, upstream dial) waited
			// for the CPU past 10 s.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn, resp, err := client.Dial(ctx, c.AuthURL(0), creds, opts...)
			if err != nil {
				errs <- fmt.Errorf("client %d: dial: %w", i, err)
				return
			}
			results[i] = result{conn: conn, node: resp.NodeID}
			msg := fmt.Sprintf("hello-%d", i)
			got, err := roundTrip(conn, msg, roundTripTimeout)
			if err != nil {
				errs <- fmt.Errorf("client %d: round trip: %w", i, err)
				return
			}
			want := resp.NodeID + "|" + testcluster.User + "|" + msg
			if got != want {
				errs <- fmt.Errorf("client %d: assigned %s but served as %q, want %q", i, resp.NodeID, got, want)
			}
			if !strings.HasPrefix(resp.URL, "ws://"+c.NodeByName(resp.NodeID).Addr) {
				errs <- fmt.Errorf("client %d: url %s is not node %s at %s", i, resp.URL, resp.NodeID, c.NodeByName(resp.NodeID).Addr)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Cleanup(func() {
		for _, r := range results {
			if r.conn != nil {
				r.conn.Close()
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	assigned := map[string]int{}
	for _, r := range results {
		assigned[r.node]++
	}
	total := 0
	for _, n := range c.Nodes() {
		total += assigned[n.Name]
	}
	if total != clients || len(assigned) != 3 {
		t.Fatalf("assignments %v: want %d over the 3 cluster nodes", assigned, clients)
	}
	// What each node holds is what auth assigned to it (the node counts a
	// connection as soon as the upgrade is done, but give the accounting
	// a moment).
	probe.Until(t, 10*time.Second, fmt.Sprintf("the nodes to hold what auth assigned, %v", assigned), func() error {
		for _, n := range c.Nodes() {
			if n.Conns() != assigned[n.Name] {
				return fmt.Errorf("nodes hold %v", c.ConnsByNode())
			}
		}
		return nil
	})
	if mm := maxOverMean(assigned); mm > 1.2 {
		t.Errorf("distribution %v: max/mean %.3f > 1.2", assigned, mm)
	}
	t.Logf("assigned %v, max/mean %.3f", assigned, maxOverMean(assigned))

	// The counts reach auth over gossip.
	c.WaitAuthViews(10*time.Second, "auth sees the nodes' counts", func(view []cluster.Member) bool {
		got := viewConns(view)
		for name, n := range assigned {
			if got[name] != n {
				return false
			}
		}
		return true
	})

	// Closing the connections brings every count back to zero.
	for _, r := range results {
		_ = r.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		r.conn.Close()
	}
	probe.Until(t, 10*time.Second, "every node back to 0 connections", func() error {
		for _, n := range c.Nodes() {
			if n.Conns() != 0 {
				return fmt.Errorf("nodes hold %v", c.ConnsByNode())
			}
		}
		return nil
	})
	c.WaitAuthViews(10*time.Second, "auth sees every count back at 0", func(view []cluster.Member) bool {
		for _, m := range view {
			if m.Conns != 0 {
				return false
			}
		}
		return true
	})
}

// TestEchoThroughAuth is the plain path with the built-in echo app and the
// token in the subprotocol instead of the query string.
func TestEchoThroughAuth(t *testing.T) {
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes = 2 })
	for _, opts := range [][]client.Option{clientOptions(4), append(clientOptions(4), client.WithTokenInSubprotocol())} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, resp, err := client.Dial(ctx, c.AuthURL(0), creds, opts...)
		cancel()
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if got, err := roundTrip(conn, "ping", roundTripTimeout); err != nil || got != "ping" {
			t.Errorf("echo = %q, %v; want ping", got, err)
		}
		if n := c.NodeByName(resp.NodeID); n == nil || n.Conns() != 1 {
			t.Errorf("node %s does not hold the connection: %v", resp.NodeID, c.ConnsByNode())
		}
		if conn.Subprotocol() != wire.Subprotocol {
			t.Errorf("negotiated subprotocol %q, want %q", conn.Subprotocol(), wire.Subprotocol)
		}
		conn.Close()
		probe.Until(t, 10*time.Second, "node "+resp.NodeID+" to release the closed connection", func() error {
			return probe.Equal("Conns", c.NodeByName(resp.NodeID).Conns(), 0)
		})
	}
}
