package authsvc

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
)

func member(name string, conns, capacity int) cluster.Member {
	return cluster.Member{Name: name, Role: cluster.RoleNode, Addr: "127.0.0.1", Port: 8080, Cap: capacity, Alive: true, Conns: conns}
}

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

func TestPickerCandidates(t *testing.T) {
	dead := member("dead", 0, 10)
	dead.Alive = false
	draining := member("draining", 0, 10)
	draining.Draining = true
	notReady := member("notready", 0, 10)
	notReady.NotReady = true
	full := member("full", 10, 10)
	auth := member("auth", 0, 10)
	auth.Role = cluster.RoleAuth
	noAddr := member("noaddr", 0, 10)
	noAddr.Addr = ""
	noCap := member("nocap", 0, 0)
	ok := member("ok", 5, 10)
	nodes := []cluster.Member{dead, draining, notReady, full, auth, noAddr, noCap, ok}
	now := time.Unix(1000, 0)
	for _, p := range []NodePicker{NewPicker(seeded(1), time.Minute), LeastLoaded{}, &RoundRobin{}} {
		for i := 0; i < 20; i++ {
			got, found := p.Pick(nodes, now)
			if !found || got.Name != "ok" {
				t.Fatalf("%T pick %d: %q, %v; want ok", p, i, got.Name, found)
			}
			if _, isP2C := p.(*Picker); isP2C && i == 4 {
				break // "ok" now holds 5 + 5 pending = cap
			}
		}
		if _, found := p.Pick(nodes[:7], now); found {
			t.Errorf("%T picked from nodes without room", p)
		}
	}
	// Pending fills a node: 5 picks took "ok" to its cap.
	p := NewPicker(seeded(1), time.Minute)
	for i := 0; i < 5; i++ {
		if _, found := p.Pick([]cluster.Member{ok}, now); !found {
			t.Fatalf("pick %d refused", i)
		}
	}
	if _, found := p.Pick([]cluster.Member{ok}, now); found {
		t.Error("picked a node whose count plus pending reached its cap")
	}
	if n := p.Pending("ok", now); n != 5 {
		t.Errorf("Pending = %d, want 5", n)
	}
}

func TestPickerPrefersLowerLoad(t *testing.T) {
	// With two candidates P2C always compares both: the lower ratio wins,
	// weighted by cap (big has more absolute connections but more room).
	p := NewPicker(seeded(2), time.Minute)
	p.SetSettle(0)
	now := time.Unix(1000, 0)
	small := member("small", 50, 100) // 0.5
	big := member("big", 400, 1000)   // 0.4
	for i := 0; i < 50; i++ {
		small.UpdatedAt, big.UpdatedAt = now, now // fresh counts: pending retires
		got, _ := p.Pick([]cluster.Member{small, big}, now)
		if got.Name != "big" {
			t.Fatalf("pick %d = %s, want big", i, got.Name)
		}
		now = now.Add(time.Millisecond)
	}
}

func TestPickerPendingAccounting(t *testing.T) {
	const ttl = 30 * time.Second
	p := NewPicker(seeded(3), ttl)
	p.SetSettle(time.Second)
	t0 := time.Unix(1000, 0)
	a := member("a", 0, 100)
	a.UpdatedAt = t0
	for i := 0; i < 10; i++ {
		if _, ok := p.Pick([]cluster.Member{a}, t0.Add(time.Duration(i)*100*time.Millisecond)); !ok {
			t.Fatal("refused")
		}
	}
	// Assignments at t0 .. t0+900ms. No newer count: all pending.
	if n := p.Pending("a", t0.Add(2*time.Second)); n != 10 {
		t.Fatalf("Pending = %d, want 10", n)
	}
	// A count heard at t0+1.45s covers assignments before t0+0.45s (settle
	// 1 s): t0, +100 .. +400 ms retire, five stay pending.
	a.UpdatedAt = t0.Add(1450 * time.Millisecond)
	a.Conns = 5
	if _, ok := p.Pick([]cluster.Member{a}, t0.Add(1500*time.Millisecond)); !ok {
		t.Fatal("refused")
	}
	if n := p.Pending("a", t0.Add(1500*time.Millisecond)); n != 6 {
		t.Errorf("after a partial count: Pending = %d, want 6 (5 old + 1 new)", n)
	}
	// Without fresher counts, pending decays at token expiry.
	if n := p.Pending("a", t0.Add(ttl+950*time.Millisecond)); n != 1 {
		t.Errorf("after the first tokens expired: Pending = %d, want 1", n)
	}
	if n := p.Pending("a", t0.Add(ttl+1500*time.Millisecond)); n != 0 {
		t.Errorf("after every token expired: Pending = %d, want 0", n)
	}
	if n := p.Pending("unknown", t0); n != 0 {
		t.Errorf("Pending(unknown) = %d", n)
	}
	// Queues of nodes that left are swept once everything expired.
	p.Pick([]cluster.Member{member("b", 0, 10)}, t0.Add(3*ttl))
	p.mu.Lock()
	_, kept := p.nodes["a"]
	p.mu.Unlock()
	if kept {
		t.Error("queue of a departed node was not swept")
	}
}

func TestPickerConcurrent(t *testing.T) {
	p := NewPicker(seeded(4), time.Minute)
	nodes := make([]cluster.Member, 5)
	for i := range nodes {
		nodes[i] = member(fmt.Sprintf("n%d", i), 0, 1000)
	}
	const goroutines, picks = 16, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	now := time.Unix(1000, 0)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int{}
			for i := 0; i < picks; i++ {
				m, ok := p.Pick(nodes, now)
				if !ok {
					t.Error("refused")
					return
				}
				local[m.Name]++
				_ = p.Pending(m.Name, now)
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	total := 0
	for _, m := range nodes {
		c := counts[m.Name]
		total += c
		if pend := p.Pending(m.Name, now); pend != c {
			t.Errorf("%s: Pending = %d, picks = %d", m.Name, pend, c)
		}
		// Pending alone balances within a few of the mean (640).
		if c < 620 || c > 660 {
			t.Errorf("%s got %d of %d picks, want about %d", m.Name, c, goroutines*picks, goroutines*picks/len(nodes))
		}
	}
	if total != goroutines*picks {
		t.Errorf("total = %d", total)
	}
}

func TestPickerSeeded(t *testing.T) {
	nodes := []cluster.Member{member("a", 0, 100), member("b", 0, 100), member("c", 0, 100), member("d", 0, 100)}
	seq := func() (s string) {
		p := NewPicker(seeded(9), time.Minute)
		for i := 0; i < 40; i++ {
			m, _ := p.Pick(nodes, time.Unix(1000, 0))
			s += m.Name
		}
		return s
	}
	if a, b := seq(), seq(); a != b {
		t.Errorf("same seed, different picks:\n%s\n%s", a, b)
	}
}

// BenchmarkPick measures one pick over 10 nodes with pending accounting.
func BenchmarkPick(b *testing.B) {
	p := NewPicker(seeded(1), 30*time.Second)
	p.SetSettle(0) // fresh counts retire pending, as with live gossip
	nodes := make([]cluster.Member, 10)
	for i := range nodes {
		nodes[i] = member(fmt.Sprintf("n%d", i), 0, 1<<30)
	}
	now := time.Unix(1000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Microsecond)
		if i%1000 == 0 {
			for j := range nodes {
				nodes[j].UpdatedAt = now
			}
		}
		p.Pick(nodes, now)
	}
}

// TestPickLeastLoaded: a moved client goes to the node with the lowest
// (conns + peers × pending) / cap; pending spreads a run of moved clients
// over the nodes as they fill up (water filling), ties go either way, and
// nodes that cannot take one are skipped.
func TestPickLeastLoaded(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPicker(seeded(3), time.Minute)
	p.SetPeers(2)
	full := member("full", 100, 100)
	draining := member("draining", 0, 100)
	draining.Draining = true
	old1, old2 := member("old-1", 90, 100), member("old-2", 90, 200) // 0.9, 0.45
	fresh := member("new", 0, 100)
	nodes := []cluster.Member{full, draining, old1, old2, fresh}
	got := map[string]int{}
	for i := 0; i < 40; i++ {
		m, ok := p.PickLeastLoaded(nodes, now)
		if !ok {
			t.Fatalf("pick %d refused", i)
		}
		got[m.Name]++
	}
	// new reaches old-2's 0.45 after 23 picks (2 × 23 / 100 = 0.46 >
	// 0.45 after the 23rd), then the two alternate as each fills.
	if got["full"]+got["draining"]+got["old-1"] != 0 {
		t.Fatalf("picked a node that is full, draining or busiest: %v", got)
	}
	if got["new"] < 23 || got["old-2"] == 0 {
		t.Fatalf("picks %v: want new filled first, then old-2 sharing", got)
	}
	if n := p.Pending("new", now); n != got["new"] {
		t.Fatalf("Pending(new) = %d, want %d: moved clients count as pending", n, got["new"])
	}

	// Ties are broken at random, not by view order.
	q := NewPicker(seeded(4), time.Minute)
	q.SetSettle(0)
	ties := map[string]int{}
	for i := 0; i < 200; i++ {
		a, b, c := member("a", 10, 100), member("b", 10, 100), member("c", 10, 100)
		a.UpdatedAt, b.UpdatedAt, c.UpdatedAt = now, now, now
		m, _ := q.PickLeastLoaded([]cluster.Member{a, b, c}, now)
		ties[m.Name]++
		now = now.Add(time.Millisecond) // fresh counts: pending retires
	}
	for _, n := range []string{"a", "b", "c"} {
		if ties[n] < 40 {
			t.Fatalf("ties %v: %s chosen too rarely for a random draw", ties, n)
		}
	}
	if _, ok := q.PickLeastLoaded([]cluster.Member{full, draining}, now); ok {
		t.Fatal("picked among nodes that cannot take a client")
	}
}
