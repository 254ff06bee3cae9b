package node

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// fakeView is a View whose members a test sets, or computes on each call.
type fakeView struct {
	mu    sync.Mutex
	nodes func() []cluster.Member
}

func (v *fakeView) Nodes() []cluster.Member {
	v.mu.Lock()
	f := v.nodes
	v.mu.Unlock()
	if f == nil {
		return nil
	}
	return f()
}

func (v *fakeView) set(f func() []cluster.Member) {
	v.mu.Lock()
	v.nodes = f
	v.mu.Unlock()
}

// peer is a node member with a heard count.
func peer(name string, conns, capacity int) cluster.Member {
	return cluster.Member{Name: name, Role: cluster.RoleNode, Alive: true, Addr: "127.0.0.1", Port: 1,
		Cap: capacity, Conns: conns, UpdatedAt: time.Unix(1000, 0)}
}

func TestPlanRebalance(t *testing.T) {
	c := DefaultRebalanceConfig()
	c.MaxRate = 300
	draining := peer("d", 4000, 10000)
	draining.Draining = true
	unheard := peer("new", 0, 10000)
	unheard.UpdatedAt = time.Time{}
	for _, tc := range []struct {
		name      string
		selfConns int
		view      []cluster.Member
		move      int
		share     int
		movers    int
		why       string
	}{
		{
			// 3 → 4: each old node moves a quarter of its clients, the
			// least that evens the cluster (3,000 of 12,000 in all).
			name: "a fourth node joins three even ones", selfConns: 4000,
			view: []cluster.Member{peer("a", 0, 10000), peer("b", 4000, 10000), peer("c", 4000, 10000), peer("new", 0, 10000)},
			move: 1000, share: 3000, movers: 3,
		},
		{
			// Its own count is exact; the view's, of itself, is stale.
			name: "own count from the node, not the view", selfConns: 3000,
			view: []cluster.Member{peer("a", 4000, 10000), peer("b", 3000, 10000), peer("new", 0, 10000)},
			move: 1000, share: 2000, movers: 2,
		},
		{
			name: "the new node itself moves nothing", selfConns: 0,
			view:  []cluster.Member{peer("a", 0, 10000), peer("b", 4000, 10000), peer("c", 4000, 10000), peer("d", 4000, 10000)},
			share: 3000, movers: 3, why: "within tolerance",
		},
		{
			// 1.09 × share: inside the 10 % band, no round.
			name: "within the tolerance", selfConns: 1090,
			view:  []cluster.Member{peer("a", 0, 10000), peer("b", 1000, 10000), peer("c", 910, 10000)},
			share: 1000, why: "within tolerance",
		},
		{
			// 1.12 × share: a round, down to the share itself.
			name: "just over the tolerance", selfConns: 1120,
			view: []cluster.Member{peer("a", 0, 10000), peer("b", 940, 10000), peer("c", 940, 10000)},
			move: 120, share: 1000, movers: 1,
		},
		{
			name: "fewer than MinMove over", selfConns: 40,
			view:  []cluster.Member{peer("a", 0, 10000), peer("b", 20, 10000)},
			share: 30, why: "within tolerance",
		},
		{
			// Shares follow caps, as auth fills nodes: 300 clients over caps
			// 200 and 100 is 200 and 100.
			name: "cap-weighted shares", selfConns: 300,
			view: []cluster.Member{peer("a", 0, 200), peer("small", 0, 100)},
			move: 100, share: 200, movers: 1,
		},
		{
			name: "a drain elsewhere", selfConns: 4000,
			view: []cluster.Member{peer("a", 0, 10000), draining, peer("new", 0, 10000)},
			why:  "node d is draining",
		},
		{
			name: "a member whose count was never heard", selfConns: 4000,
			view: []cluster.Member{peer("a", 0, 10000), peer("b", 4000, 10000), unheard},
			why:  "the count of node new has not been heard yet",
		},
		{
			name: "not in the view", selfConns: 4000,
			view: []cluster.Member{peer("b", 4000, 10000), peer("new", 0, 10000)},
			why:  "not in the view",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planRebalance("a", tc.selfConns, tc.view, &c)
			if p.Move != tc.move || (tc.why == "" && (p.Share != tc.share || p.Movers != tc.movers)) {
				t.Fatalf("plan %+v; want move %d share %d movers %d", p, tc.move, tc.share, tc.movers)
			}
			if tc.why != "" && !strings.Contains(p.Why, tc.why) {
				t.Fatalf("why %q, want %q", p.Why, tc.why)
			}
			if want := (c.MaxRate - float64(tc.movers)) / float64(tc.movers); tc.move > 0 && p.Rate != want {
				t.Fatalf("rate %g, want (MaxRate − movers) / movers = %g", p.Rate, want)
			}
		})
	}
}

// rebalanceFixture is a node with rebalancing on, over a view holding it
// and one empty peer ("other"), whose count is the clients the node moved
// (as if each one had arrived there).
type rebalanceFixture struct {
	*fixture
	view  *fakeView
	rec   *codeRecorder
	other func() cluster.Member
}

func newRebalanceFixture(t *testing.T, maxRate float64) *rebalanceFixture {
	t.Helper()
	view := &fakeView{}
	f := newFixture(t, func(c *Config) {
		c.View = view
		c.Rebalance = DefaultRebalanceConfig()
		c.Rebalance.MaxRate = maxRate
		c.Rebalance.MinMove = 1
		c.Rebalance.Interval = 20 * time.Millisecond
		c.Rebalance.Settle = 100 * time.Millisecond
	})
	rf := &rebalanceFixture{fixture: f, view: view, rec: &codeRecorder{codes: map[string]int{}}}
	rf.other = func() cluster.Member { return peer("other", rf.rec.count(wire.CloseRebalance), 100) }
	// Nothing to do until the test says so: the peer is unheard.
	view.set(func() []cluster.Member {
		o := rf.other()
		o.UpdatedAt = time.Time{}
		return []cluster.Member{peer(testNode, 0, 100), o}
	})
	return rf
}

// start shows the node the peer's count, which starts the rebalance.
func (rf *rebalanceFixture) start(extra ...cluster.Member) {
	rf.view.set(func() []cluster.Member {
		return append([]cluster.Member{peer(testNode, 0, 100), rf.other()}, extra...)
	})
}

// codeRecorder counts the close codes its clients see, and who saw them.
type codeRecorder struct {
	mu    sync.Mutex
	codes map[string]int // "user/code" and "code"
	wg    sync.WaitGroup
}

func (r *codeRecorder) watch(user string, ws *websocket.Conn) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				code := -1
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				r.mu.Lock()
				r.codes[user+"/"+strconv.Itoa(code)]++
				r.codes[strconv.Itoa(code)]++
				r.mu.Unlock()
				return
			}
		}
	}()
}

func (r *codeRecorder) count(code int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.codes[strconv.Itoa(code)]
}

func (r *codeRecorder) countFor(user string, code int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.codes[user+"/"+strconv.Itoa(code)]
}

// TestRebalanceMovesExcess: 40 clients here and an empty peer of the same
// cap: the node moves exactly 20, with the rebalance code, no faster than
// its share of MaxRate, in one round, and then stays put (the peer now
// holds what it moved, so the next looks find the cluster even).
func TestRebalanceMovesExcess(t *testing.T) {
	const clients, rate = 40, 100.0
	rf := newRebalanceFixture(t, rate)
	for i := 0; i < clients; i++ {
		rf.rec.watch("u", rf.mustDial("u"))
	}
	probe.Until(t, 5*time.Second, "all connected", func() error { return probe.Equal("count", rf.node.Conns(), clients) })
	// Plans use the lowest own count of the last Settle: let it be 40.
	time.Sleep(2 * rf.node.conf.Rebalance.Settle)
	start := time.Now()
	rf.start()
	defer func() {
		if t.Failed() {
			t.Log(rf.logs.String())
		}
	}()
	probe.Until(t, 10*time.Second, "20 clients moved", func() error { return probe.Equal("count", rf.rec.count(wire.CloseRebalance), 20) })
	took := time.Since(start)
	// One mover: closes paced at 99/s with no burst, the first 1/rate
	// after the start: 20 take at least 20 gaps of 10.1 ms. A lower bound,
	// so a slow machine cannot break it.
	if took < 20*time.Second/99 {
		t.Fatalf("20 moves took %s: faster than the rate allows", took)
	}
	// Several Settle periods later, nothing more has moved.
	time.Sleep(5 * rf.node.conf.Rebalance.Settle)
	if n := rf.rec.count(wire.CloseRebalance); n != 20 {
		t.Fatalf("%d moved in all, want exactly the 20 over the share", n)
	}
	if other := rf.rec.count(-1) + rf.rec.count(wire.CloseDraining); other != 0 {
		t.Fatalf("%d clients closed otherwise", other)
	}
	if rf.node.Conns() != 20 {
		t.Fatalf("%d left, want 20", rf.node.Conns())
	}
	if m, r := rf.metric("wsdirect_node_rebalance_moved_total", ""), rf.metric("wsdirect_node_rebalance_rounds_total", ""); m != 20 || r != 1 {
		t.Fatalf("metrics: moved %v in %v rounds, want 20 in 1", m, r)
	}
}

// TestRebalanceExemptsMovedClients: clients that a rebalance moved here
// (marked tokens) are never moved again within Exempt; the round moves only
// the others and then stops for want of movable clients.
func TestRebalanceExemptsMovedClients(t *testing.T) {
	rf := newRebalanceFixture(t, 500)
	for i := 0; i < 30; i++ {
		tok, _, err := rf.signer.MintRebalanced("moved", testNode)
		if err != nil {
			t.Fatal(err)
		}
		rf.remember(tok)
		ws, _, we, err := rf.dial(tok, false)
		if err != nil {
			t.Fatalf("dial with a rebalanced token: %v %+v", err, we)
		}
		t.Cleanup(func() { ws.Close() })
		rf.rec.watch("moved", ws)
	}
	for i := 0; i < 10; i++ {
		rf.rec.watch("plain", rf.mustDial("plain"))
	}
	probe.Until(t, 5*time.Second, "all connected", func() error { return probe.Equal("count", rf.node.Conns(), 40) })
	time.Sleep(2 * rf.node.conf.Rebalance.Settle)
	if a := rf.metric("wsdirect_node_rebalance_arrived_total", ""); a != 30 {
		t.Fatalf("arrived = %v, want 30", a)
	}
	rf.start()
	// The share is 20 of 40, but only the 10 plain clients may move.
	probe.Until(t, 10*time.Second, "the plain clients moved", func() error { return probe.Check(rf.rec.countFor("plain", wire.CloseRebalance) == 10, "not yet") })
	time.Sleep(5 * rf.node.conf.Rebalance.Settle)
	if n := rf.rec.countFor("moved", wire.CloseRebalance); n != 0 {
		t.Fatalf("%d clients moved twice", n)
	}
	if rf.node.Conns() != 30 {
		t.Fatalf("%d left, want the 30 exempt ones", rf.node.Conns())
	}
}

// TestRebalanceOff: with rebalancing switched off the same uneven cluster
// keeps every client.
func TestRebalanceOff(t *testing.T) {
	view := &fakeView{}
	view.set(func() []cluster.Member { return []cluster.Member{peer(testNode, 0, 100), peer("other", 0, 100)} })
	f := newFixture(t, func(c *Config) {
		c.View = view
		c.Rebalance = DefaultRebalanceConfig()
		c.Rebalance.Enabled = false
		c.Rebalance.Interval = 10 * time.Millisecond
	})
	rec := &codeRecorder{codes: map[string]int{}}
	for i := 0; i < 20; i++ {
		rec.watch("u", f.mustDial("u"))
	}
	// 30 intervals: an enabled node would have started moving after one.
	time.Sleep(30 * 10 * time.Millisecond)
	if n := rec.count(wire.CloseRebalance); n != 0 || f.node.Conns() != 20 {
		t.Fatalf("switched off, yet %d moved (%d left)", n, f.node.Conns())
	}
	if r := f.metric("wsdirect_node_rebalance_rounds_total", ""); r != 0 {
		t.Fatalf("%v rounds while switched off", r)
	}
}

// TestRebalanceAndDrains: no round starts while another node drains; a
// round in progress stops when one starts draining; and a node that drains
// itself closes its clients with the drain code only.
func TestRebalanceAndDrains(t *testing.T) {
	rf := newRebalanceFixture(t, 20) // 50 ms apart: time to intervene
	for i := 0; i < 40; i++ {
		rf.rec.watch("u", rf.mustDial("u"))
	}
	probe.Until(t, 5*time.Second, "all connected", func() error { return probe.Equal("count", rf.node.Conns(), 40) })

	d := peer("draining", 0, 100)
	d.Draining = true
	rf.start(d)
	time.Sleep(20 * rf.node.conf.Rebalance.Interval)
	if n := rf.rec.count(wire.CloseRebalance); n != 0 {
		t.Fatalf("%d moved while another node drained", n)
	}

	// The drain ends; a round starts, and stops when another drain starts.
	var draining sync.Mutex
	drainNow := false
	rf.view.set(func() []cluster.Member {
		nodes := []cluster.Member{peer(testNode, 0, 100), rf.other()}
		draining.Lock()
		defer draining.Unlock()
		if drainNow {
			nodes = append(nodes, d)
		}
		return nodes
	})
	probe.Until(t, 10*time.Second, "the round started", func() error {
		return probe.Check(rf.rec.count(wire.CloseRebalance) >= 3, "%d, want at least %d", rf.rec.count(wire.CloseRebalance), 3)
	})
	draining.Lock()
	drainNow = true
	draining.Unlock()
	// Counted where the closes happen: the clients see them a moment later.
	at := int(rf.metric("wsdirect_node_rebalance_moved_total", ""))
	// Each close waits 50 ms and then looks at the view (Interval 20 ms has
	// passed by then): at most the close already past its look follows.
	time.Sleep(20 * rf.node.conf.Rebalance.Interval)
	after := int(rf.metric("wsdirect_node_rebalance_moved_total", ""))
	if after > at+1 || after >= 20 {
		t.Fatalf("%d moved before the drain, %d after it appeared: the round did not stop", at, after)
	}

	// Now this node drains: its clients get the drain code, none the
	// rebalance code, even with the other drain gone.
	draining.Lock()
	drainNow = false
	draining.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rf.node.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	rf.rec.wg.Wait()
	if n := rf.rec.count(wire.CloseRebalance); n != after {
		t.Fatalf("moved %d more while draining itself", n-after)
	}
	if n := rf.rec.count(wire.CloseDraining); n != 40-after {
		t.Fatalf("%d closed by the drain, want the %d left", n, 40-after)
	}
}

// TestLooks: a round needs the total steady for the whole of the last
// Settle: not before the node has looked that long, not while clients pour
// in, and again once the total has held; and plans use the lowest own count
// of that time.
func TestLooks(t *testing.T) {
	c := DefaultRebalanceConfig() // Settle 5 s, Tolerance 0.10, MinMove 20
	var l looks
	t0 := time.Unix(1000, 0)
	members := "a\x00b\x00"
	look := func(sec float64, total, own int) (bool, int) {
		return l.add(t0.Add(time.Duration(sec*float64(time.Second))), total, own, members, &c)
	}
	for sec := 0.0; sec < 5; sec++ {
		if steady, _ := look(sec, 1000, 300); steady {
			t.Fatalf("steady at %gs: has not looked for Settle yet", sec)
		}
	}
	if steady, low := look(5, 1000, 300); !steady || low != 300 {
		t.Fatalf("after 5 s of the same total: steady %v, own low %d", steady, low)
	}
	// A burst: +10 % within the window (the band is 5 %, at least 20); the
	// own count runs ahead of what the others have heard.
	if steady, low := look(6, 1100, 400); steady || low != 300 {
		t.Fatalf("total +10 %%: steady %v, own low %d; want unsteady, 300", steady, low)
	}
	for sec := 7.0; sec < 11; sec++ {
		if steady, _ := look(sec, 1100, 400); steady {
			t.Fatalf("steady at %gs: the jump is still within the last Settle", sec)
		}
	}
	if steady, low := look(11, 1100, 400); !steady || low != 400 {
		t.Fatalf("5 s after the jump: steady %v, own low %d; want steady, 400", steady, low)
	}
	// Small churn inside the band is steady: ±20 on 1,100.
	if steady, _ := look(12, 1120, 400); !steady {
		t.Fatal("churn within MinMove counted as unsteady")
	}
	if steady, _ := look(13, 1080, 400); !steady {
		t.Fatal("churn within MinMove counted as unsteady")
	}
	if got := len(l.at); got > 8 {
		t.Fatalf("%d looks kept: the history must not grow without bound", got)
	}
	// A member joins (or is declared failed): not steady for Settle, even
	// with the same total.
	members = "a\x00b\x00c\x00"
	for sec := 14.0; sec < 19; sec++ {
		if steady, _ := look(sec, 1080, 400); steady {
			t.Fatalf("steady at %gs: the members changed at 14s", sec)
		}
	}
	if steady, _ := look(19, 1080, 400); !steady {
		t.Fatal("not steady 5 s after the members changed")
	}
	if got := memberNames([]cluster.Member{peer("a", 0, 1), peer("b", 0, 1)}); got != "a\x00b\x00" {
		t.Fatalf("memberNames = %q", got)
	}
}
