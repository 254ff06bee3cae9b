package e2e

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/node"
)

// Rebalancing timings for in-process clusters: rounds start within a tenth
// of a second and the view settles for a second after each.
const (
	rbInterval = 100 * time.Millisecond
	rbSettle   = time.Second
	rbMinMove  = 5
	// rbBackoff is the fleet's first backoff window (startFleet); with
	// ResetAfter short, a moved client reconnects within it.
	rbBackoff = 50 * time.Millisecond
)

// rebalanceCluster starts three nodes and one auth instance with
// rebalancing on (or off) at maxRate moves per second.
func rebalanceCluster(t *testing.T, enabled bool, maxRate float64) *testcluster.Cluster {
	return startCluster(t, func(o *testcluster.Options) {
		o.Nodes = 3
		o.NodeConfig = func(_ int, c *node.Config) {
			c.Rebalance = node.DefaultRebalanceConfig()
			c.Rebalance.Enabled = enabled
			c.Rebalance.MaxRate = maxRate
			c.Rebalance.MinMove = rbMinMove
			c.Rebalance.Interval = rbInterval
			c.Rebalance.Settle = rbSettle
		}
	})
}

// resetFast makes a client that was up for half a second start its next
// backoff at the first window, as a long-lived client does.
func resetFast(c *client.ManagedConfig) { c.ResetAfter = 500 * time.Millisecond }

// rateProbe samples a counter every 50 ms. Each sample keeps the times
// just before and just after the read, so that an increase between two
// samples is known to have happened within [before_i, after_j].
type rateProbe struct {
	mu      sync.Mutex
	before  []time.Time
	after   []time.Time
	v       []float64
	stop    chan struct{}
	stopped chan struct{}
}

// sumCounter adds up every series of a counter family; -1 when absent.
func sumCounter(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			s := 0.0
			for _, m := range mf.GetMetric() {
				s += m.GetCounter().GetValue()
			}
			return s
		}
	}
	return -1
}

func startRateProbe(sample func() float64) *rateProbe {
	p := &rateProbe{stop: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			before := time.Now()
			v := sample()
			after := time.Now()
			p.mu.Lock()
			p.before, p.v, p.after = append(p.before, before), append(p.v, v), append(p.after, after)
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// peak stops the probe and returns the largest increase of the counter
// between two samples whose reads lie within an interval no longer than w,
// and the total increase.
func (p *rateProbe) peak(w time.Duration) (peak, total float64) {
	close(p.stop)
	<-p.stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.v {
		for j := i; j < len(p.v) && p.after[j].Sub(p.before[i]) <= w; j++ {
			peak = math.Max(peak, p.v[j]-p.v[i])
		}
	}
	return peak, p.v[len(p.v)-1] - p.v[0]
}

// TestRebalanceAfterScaleOut: 300 managed clients on three nodes, then a
// fourth node joins. The old nodes move it its share, and no more: max/mean
// ends at most 1.10, the moves are at most 1.2 times the least that evens
// the cluster, no client moves twice, none is lost, and auth never sees the
// moved clients faster than the configured bound allows.
func TestRebalanceAfterScaleOut(t *testing.T) {
	const clients, maxRate = 300, 30.0
	c := rebalanceCluster(t, true, maxRate)
	f := startFleet(t, c.AuthURL(0), clients, 60*time.Second, resetFast)
	time.Sleep(time.Second) // every client up for ResetAfter
	probe.Until(t, 10*time.Second, fmt.Sprintf("all %d connected", clients), func() error {
		return probe.Equal("connected", f.connected(), clients)
	})
	before := c.ConnsByNode()
	// The least that evens four equal nodes: what each holds over a quarter.
	minimum := 0.0
	for _, n := range before {
		minimum += math.Max(0, float64(n)-clients/4.0)
	}
	t.Logf("before: %v; the least to move is %.0f", before, minimum)
	// From here on: anything a starved host's flapping gossip made the nodes
	// move while the clients were connecting is not this scale-out's.
	base := make([]int64, len(f.clients))
	for i, mc := range f.clients {
		base[i] = mc.rebalanced.Load()
	}

	authReg := c.Auth(0).Server.Registry()
	atAuth := startRateProbe(func() float64 { return sumCounter(authReg, "wsdirect_auth_rebalance_requests_total") })
	atNodes := startRateProbe(func() float64 {
		s := 0.0
		for _, n := range c.Nodes() {
			s += max(0, sumCounter(n.Registry, "wsdirect_node_rebalance_moved_total"))
		}
		return s
	})
	start := time.Now()
	added := c.AddNode()
	probe.Until(t, 40*time.Second, "max/mean over 4 nodes at most 1.10 with every client connected", func() error {
		counts := c.ConnsByNode()
		return probe.Check(f.connected() == clients && len(counts) == 4 && maxOverMean(counts) <= 1.10,
			"%v, %d of %d connected", counts, f.connected(), clients)
	})
	balancedAfter := time.Since(start)
	// Let any further round start and end before counting: a round starts
	// within Interval of a look, and looks come Settle apart.
	time.Sleep(3 * (rbSettle + rbInterval))
	peak, requests := atAuth.peak(time.Second)
	closePeak, closes := atNodes.peak(time.Second)

	moved, twice := 0, 0
	for i, mc := range f.clients {
		n := int(mc.rebalanced.Load() - base[i])
		moved += n
		if n > 1 {
			twice++
		}
	}
	counts := c.ConnsByNode()
	t.Logf("after %s: %v (max/mean %.3f); moved %d = %.2f× the least (%.0f); closes: %.0f, peak %.0f in 1 s; auth requests of moved clients: %.0f, peak %.0f in 1 s (bound %.0f/s)",
		balancedAfter.Round(time.Millisecond), counts, maxOverMean(counts), moved, float64(moved)/minimum, minimum, closes, closePeak, requests, peak, maxRate)

	if twice > 0 {
		t.Errorf("%d clients moved more than once", twice)
	}
	if errs := f.failed(); len(errs) > 0 {
		t.Fatalf("%d clients gave up, e.g. %v", len(errs), errs[0])
	}
	if got := f.connected(); got != clients {
		t.Fatalf("%d of %d clients connected: %d lost", got, clients, clients-got)
	}
	if float64(moved) < minimum-float64(len(before)) || float64(moved) > 1.2*minimum {
		t.Errorf("moved %d clients, want between the least, %.0f (less one per node for rounding), and 1.2 times it", moved, minimum)
	}
	if maxOverMean(counts) > 1.10 || added.Conns() == 0 {
		t.Errorf("after the rebalance %v: max/mean %.3f", counts, maxOverMean(counts))
	}
	// The movers close at most MaxRate in any second. Each moved client
	// asks auth once, within its first backoff window after the close, and
	// auth counts the request when it has answered: auth's second saw
	// closes from at most 1 s + that window + the spread of delivery and
	// answer times, here allowed 0.2 s (-race on a loaded machine).
	if closePeak > maxRate {
		t.Errorf("the nodes closed %.0f clients in one second; MaxRate is %.0f", closePeak, maxRate)
	}
	if bound := maxRate * (1 + rbBackoff.Seconds() + 0.2); peak > bound {
		t.Errorf("auth saw %.0f requests of moved clients in one second; the bound allows %.1f", peak, bound)
	}
	if closes != float64(moved) {
		t.Errorf("the nodes counted %.0f moves, the clients %d", closes, moved)
	}
	if requests < float64(moved) {
		t.Errorf("auth counted %.0f requests of moved clients, fewer than the %d moves", requests, moved)
	}
	if err := f.echoAll(5 * time.Second); err != nil {
		t.Fatalf("echo after the rebalance: %v", err)
	}
}

// TestRebalanceSwitchedOff: with rebalancing off, a node that joins gets
// nothing from the others (and, with no new clients, nothing at all).
func TestRebalanceSwitchedOff(t *testing.T) {
	const clients = 90
	c := rebalanceCluster(t, false, 100)
	f := startFleet(t, c.AuthURL(0), clients, 30*time.Second, resetFast)
	added := c.AddNode()
	// An enabled node would start within Interval of the new count; give
	// it several look-and-settle periods.
	time.Sleep(3 * (rbSettle + rbInterval))
	moved := 0
	for _, mc := range f.clients {
		moved += int(mc.rebalanced.Load())
	}
	if moved != 0 || added.Conns() != 0 {
		t.Fatalf("switched off, yet %d clients moved (%s holds %d)", moved, added.Name, added.Conns())
	}
	if got := f.connected(); got != clients {
		t.Fatalf("%d of %d connected", got, clients)
	}
}

// TestRebalanceWhileDraining: a node joins while another drains. The
// draining node closes its clients with the drain code only, and nobody
// moves a client while a node in the view is draining: the drain's
// reconnects fill the new node through auth instead.
func TestRebalanceWhileDraining(t *testing.T) {
	const clients = 150
	c := rebalanceCluster(t, true, 100)
	f := startFleet(t, c.AuthURL(0), clients, 30*time.Second, resetFast)
	victim := c.Node(0)
	time.Sleep(time.Second) // every client up for ResetAfter
	onVictim := f.byNode()[victim.Name]
	victimDisconnects := make([]int64, len(onVictim))
	for i, mc := range onVictim {
		victimDisconnects[i] = mc.disconnects.Load()
	}

	// Drain first, then add: the drain is in every view before the new
	// node's count is, so no round can start in between.
	drained := make(chan error, 1)
	go func() { drained <- c.DrainNode(0, 20*time.Second) }()
	c.WaitAuthViews(10*time.Second, victim.Name+" draining in every view", func(view []cluster.Member) bool {
		for _, m := range view {
			if m.Name == victim.Name {
				return m.Draining
			}
		}
		return false
	})
	// Counted from here: the claim is about the drain.
	base := make([]int64, len(f.clients))
	for i, mc := range f.clients {
		base[i] = mc.rebalanced.Load()
	}
	added := c.AddNode()
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
	probe.Until(t, 20*time.Second, fmt.Sprintf("all %d clients back", clients), func() error {
		return probe.Equal("connected", f.connected(), clients)
	})
	time.Sleep(3 * (rbSettle + rbInterval))
	moved := 0
	for i, mc := range f.clients {
		moved += int(mc.rebalanced.Load() - base[i])
	}
	if moved != 0 {
		t.Errorf("%d clients moved by a rebalance while %s was draining", moved, victim.Name)
	}
	// Each of them was closed (by the drain: none by a rebalance, above).
	for i, mc := range onVictim {
		if mc.disconnects.Load() == victimDisconnects[i] {
			t.Fatalf("a client of the draining node was never closed")
		}
	}
	t.Logf("%d clients of %s moved by its drain; now %v (%s took %d through auth)",
		len(onVictim), victim.Name, c.ConnsByNode(), added.Name, added.Conns())
	if errs := f.failed(); len(errs) > 0 {
		t.Fatalf("%d clients gave up, e.g. %v", len(errs), errs[0])
	}
}
