package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/node"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// capWatch samples every node's count until stop is closed and records the
// highest it saw, so a transient overshoot during a burst is caught.
func capWatch(c *testcluster.Cluster, stop <-chan struct{}) *sync.Map {
	peak := &sync.Map{}
	go func() {
		for {
			for _, n := range c.Nodes() {
				v, _ := peak.LoadOrStore(n.Name, 0)
				if k := n.Conns(); k > v.(int) {
					peak.Store(n.Name, k)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	return peak
}

func peakOf(peak *sync.Map, name string) int {
	v, _ := peak.Load(name)
	k, _ := v.(int)
	return k
}

// TestCapThroughAuth fires a concurrent burst larger than the cluster's
// capacity through auth: no node ever exceeds its cap, the rest of the
// capacity can still be filled through auth, and once every node is full
// auth answers 503.
func TestCapThroughAuth(t *testing.T) {
	const capPerNode, nodes, burst = 20, 2, 64
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes, o.Cap = nodes, capPerNode })
	opts := clientOptions(burst)

	stop := make(chan struct{})
	peak := capWatch(c, stop)
	var (
		mu       sync.Mutex
		conns    []*websocket.Conn
		perNode  = map[string]int{}
		refused  atomic.Int64
		unwanted []error
		wg       sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, cn := range conns {
			cn.Close()
		}
	})
	start := make(chan struct{})
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn, resp, err := client.Dial(ctx, c.AuthURL(0), creds, opts...)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				conns = append(conns, conn)
				perNode[resp.NodeID]++
			case statusOf(err) == http.StatusServiceUnavailable:
				refused.Add(1)
			default:
				unwanted = append(unwanted, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range unwanted {
		t.Errorf("burst: unexpected error: %v", err)
	}
	t.Logf("burst of %d: %d connected %v, %d refused with 503", burst, len(conns), perNode, refused.Load())
	if len(conns)+int(refused.Load()) != burst {
		t.Fatalf("connected %d + refused %d != burst %d", len(conns), refused.Load(), burst)
	}
	for name, k := range perNode {
		if k > capPerNode {
			t.Errorf("auth put %d clients on %s, cap %d", k, name, capPerNode)
		}
	}

	// Fill whatever room is left until every node is full. Right after the
	// burst auth may refuse while nodes still have room: it keeps counting
	// its recent assignments as pending until the gossiped counts are
	// fresher than the settle time (authsvc.Picker), erring on the safe
	// side. So a 503 here is retried until the counts settle.
	full := func() bool {
		for _, n := range c.Nodes() {
			if n.Conns() != capPerNode {
				return false
			}
		}
		return true
	}
	topUp, refusedWithRoom := time.Now(), 0
	err := probe.Poll(context.Background(), 30*time.Second, 100*time.Millisecond, "the cluster to fill up through auth", func() error {
		// Dial until full or refused; a refusal waits for the next check.
		for tries := 0; !full() && tries < capPerNode*nodes; tries++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			conn, _, err := client.Dial(ctx, c.AuthURL(0), creds, opts...)
			cancel()
			if err != nil {
				if statusOf(err) != http.StatusServiceUnavailable {
					t.Fatalf("top-up dial: %v", err)
				}
				refusedWithRoom++
				return fmt.Errorf("auth refused while the nodes hold %v", c.ConnsByNode())
			}
			conns = append(conns, conn)
		}
		return probe.Check(full(), "the nodes hold %v", c.ConnsByNode())
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("filled the remaining room in %v; auth refused %d times meanwhile while nodes had room",
		time.Since(topUp).Round(time.Millisecond), refusedWithRoom)
	// Once auth has heard that every node is full, it refuses. (Before it
	// has heard, it may still assign a full node when the connects took
	// longer than its pending settle time, which a loaded machine under
	// -race does; the node's own cap then refuses the upgrade, as the
	// burst above checked.)
	c.WaitAuthViews(10*time.Second, "auth hears that every node is full", func(view []cluster.Member) bool {
		for _, m := range view {
			if m.Conns != capPerNode {
				return false
			}
		}
		return true
	})
	_, err = client.Authorize(context.Background(), c.AuthURL(0), creds, opts...)
	var ae *client.AuthError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("auth with every node full: got %v, want HTTP 503", err)
	}
	close(stop)
	for _, n := range c.Nodes() {
		if v := peakOf(peak, n.Name); v > capPerNode {
			t.Errorf("%s peaked at %d connections, cap %d", n.Name, v, capPerNode)
		}
	}
}

// TestCapAtNode bypasses auth's bookkeeping: a concurrent burst of valid
// tokens, all for one node, larger than its cap. Exactly cap upgrades
// succeed; the rest get 503 with Retry-After and a JSON reason.
func TestCapAtNode(t *testing.T) {
	const capPerNode, burst = 25, 80
	c := startCluster(t, func(o *testcluster.Options) { o.Nodes, o.Cap = 1, capPerNode })
	n := c.Node(0)
	tokens := make([]string, burst)
	for i := range tokens {
		tok, _, err := c.Signer.Mint(testcluster.User, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
	}
	stop := make(chan struct{})
	peak := capWatch(c, stop)
	var (
		mu      sync.Mutex
		conns   []*websocket.Conn
		refused int
		wg      sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, cn := range conns {
			cn.Close()
		}
	})
	start := make(chan struct{})
	for _, tok := range tokens {
		wg.Add(1)
		go func(tok string) {
			defer wg.Done()
			<-start
			d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
			conn, res, err := d.Dial(n.URL()+"?"+wire.TokenQueryParam+"="+url.QueryEscape(tok), nil)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				conns = append(conns, conn)
				return
			}
			if res == nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer res.Body.Close()
			var we wire.Error
			_ = json.NewDecoder(res.Body).Decode(&we)
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || we.Code != node.CodeNodeFull {
				t.Errorf("refusal: status %d, Retry-After %q, code %q; want 503, set, %q",
					res.StatusCode, res.Header.Get("Retry-After"), we.Code, node.CodeNodeFull)
			}
			refused++
		}(tok)
	}
	close(start)
	wg.Wait()
	close(stop)
	if len(conns) != capPerNode || refused != burst-capPerNode {
		t.Errorf("burst of %d at cap %d: %d accepted, %d refused", burst, capPerNode, len(conns), refused)
	}
	if v := peakOf(peak, n.Name); v > capPerNode {
		t.Errorf("peaked at %d connections, cap %d", v, capPerNode)
	}
	if got := n.Conns(); got != capPerNode {
		t.Errorf("node holds %d, want %d", got, capPerNode)
	}
}
