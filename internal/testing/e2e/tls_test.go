package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/pebble"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testcluster"
)

// TestTLSFlow is the whole flow over TLS: clients log in to auth over
// https://, are sent to wss:// URLs, connect and echo; a killed node's
// clients come back over wss:// on the others. A client that does not
// trust the cluster's CA is refused at auth with a certificate error.
func TestTLSFlow(t *testing.T) {
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes, o.TLS = 3, true })
	if !strings.HasPrefix(c.AuthURL(0), "https://") {
		t.Fatalf("auth URL %s", c.AuthURL(0))
	}
	tc := c.ClientTLS()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := client.Dial(ctx, c.AuthURL(0), creds, clientOptionsTLS(4, tc)...)
	if err != nil {
		t.Fatalf("dial over TLS: %v", err)
	}
	if want := "wss://" + c.NodeByName(resp.NodeID).Addr + "/ws"; resp.URL != want {
		t.Fatalf("auth sent the client to %s, want %s", resp.URL, want)
	}
	if got, err := roundTrip(conn, "over wss", roundTripTimeout); err != nil || got != "over wss" {
		t.Fatalf("echo: %q %v", got, err)
	}
	conn.Close()
	if _, _, err := client.Dial(ctx, c.AuthURL(0), creds, clientOptions(1)...); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: %v, want a certificate error", err)
	}

	f := startFleet(t, c.AuthURL(0), fleetSize, 30*time.Second, func(mc *client.ManagedConfig) {
		mc.Options = clientOptionsTLS(64, tc)
	})
	victim := c.Node(0)
	if len(f.byNode()[victim.Name]) == 0 {
		t.Fatalf("no client on %s: %v", victim.Name, c.ConnsByNode())
	}
	c.KillNode(0)
	probe.Until(t, 30*time.Second, fmt.Sprintf("all %d clients back on the other nodes", fleetSize), func() error {
		return probe.Check(f.connected() == fleetSize && len(f.byNode()[victim.Name]) == 0,
			"connected %d, by node %v", f.connected(), c.ConnsByNode())
	})
	if err := f.echoAll(10 * time.Second); err != nil {
		t.Fatalf("echo after the kill: %v", err)
	}
	if errs := f.failed(); len(errs) > 0 {
		t.Fatalf("%d clients gave up, e.g. %v", len(errs), errs[0])
	}
}

// TestACMENodesNotAssignedUntilCertified: nodes whose ACME CA is down join
// the cluster not ready, and auth assigns nobody to them (503, no
// capacity); when the CA comes up every node gets an IP certificate for its
// 127.0.0.x address, becomes ready, and clients trusting only the CA's
// roots connect over wss and echo.
func TestACMENodesNotAssignedUntilCertified(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pebble")
	}
	ips := []string{"127.0.0.11", "127.0.0.12"}
	httpPort := pebble.FreePortOn(t, ips...)
	po := pebble.DefaultOptions()
	po.HTTPPort, po.TLSPort = httpPort, pebble.FreePortOn(t, ips...)
	p := pebble.Prepare(t, po)
	acme := testcluster.DefaultACMEOptions()
	acme.Directory, acme.CAFile, acme.HTTPPort = p.DirectoryURL(), p.CAFile, httpPort
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes, o.TLS, o.ACME = 2, true, acme })
	c.WaitAuthViews(10*time.Second, "auth sees both nodes not ready", func(view []cluster.Member) bool {
		for _, m := range view {
			if !m.NotReady {
				return false
			}
		}
		return len(view) == 2
	})
	authOnly := c.ClientTLS()
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := client.Authorize(ctx, c.AuthURL(0), creds, clientOptionsTLS(2, authOnly)...)
		cancel()
		var ae *client.AuthError
		if !errors.As(err, &ae) || ae.Status != 503 {
			t.Fatalf("authorize with no node certified: %v, want 503", err)
		}
	}
	for _, n := range c.Nodes() {
		if reason := n.Server.NotReadyReason(); !strings.Contains(reason, p.DirectoryURL()) {
			t.Fatalf("%s not ready for %q, want the CA's address and the cause", n.Name, reason)
		}
	}

	p.Start()
	c.WaitAuthViews(60*time.Second, "auth sees both nodes ready", func(view []cluster.Member) bool {
		for _, m := range view {
			if m.NotReady {
				return false
			}
		}
		return len(view) == 2
	})
	acme.Roots = p.RootPEM()
	tc := c.ClientTLS()
	seen := map[string]bool{}
	for i := 0; i < 20 && len(seen) < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, resp, err := client.Dial(ctx, c.AuthURL(0), creds, clientOptionsTLS(2, tc)...)
		cancel()
		if err != nil {
			t.Fatalf("dial after certification: %v", err)
		}
		if got, err := roundTrip(conn, "acme", roundTripTimeout); err != nil || got != "acme" {
			t.Fatalf("echo on %s: %q %v", resp.NodeID, got, err)
		}
		leaf := conn.NetConn().(*tls.Conn).ConnectionState().PeerCertificates[0]
		if ip := c.NodeByName(resp.NodeID).Addr; len(leaf.IPAddresses) != 1 || !strings.HasPrefix(ip, leaf.IPAddresses[0].String()+":") {
			t.Fatalf("%s at %s served a certificate for %v", resp.NodeID, ip, leaf.IPAddresses)
		}
		seen[resp.NodeID] = true
		conn.Close()
	}
	if len(seen) != 2 {
		t.Fatalf("clients reached %v, want both nodes", seen)
	}
}
