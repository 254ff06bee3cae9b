package readiness

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// readFull reads n bytes from c, failing after 5 s.
func readFull(t *testing.T, c net.Conn, n int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the poller needs Linux")
	}
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// expect waits for one value on ch, failing after a generous bound.
func expect(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
}

// expectNone checks nothing arrives on ch for a while: long enough for an
// event the poller already has to be delivered on a loaded machine.
func expectNone(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("unexpected %s", what)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestOneShotLevelTriggered: an event starts f once; nothing more comes
// until Rearm, and Rearm with unread data reports it again at once.
func TestOneShotLevelTriggered(t *testing.T) {
	p := newPoller(t)
	server, client := pair(t)
	fired := make(chan struct{}, 10)
	w, err := p.Add(server, func(bool) { fired <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Rearm(); err != nil {
		t.Fatal(err)
	}
	expectNone(t, fired, "event on a silent socket")
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, "event for data")
	// Still unread, but one-shot: no second event before Rearm.
	if _, err := client.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	expectNone(t, fired, "second event before Rearm")
	if err := w.Rearm(); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, "event after Rearm for data still unread")
	readFull(t, server, len("hellomore"))
	if err := w.Rearm(); err != nil {
		t.Fatal(err)
	}
	expectNone(t, fired, "event after everything was read")
	// A peer's close is an event too.
	client.Close()
	expect(t, fired, "event for the peer's close")
	w.Stop()
}

// TestStopArmedRunsOnce: stopping an armed watch runs f once more, so its
// owner sees the end; a stopped watch cannot be rearmed and gets no
// events.
func TestStopArmedRunsOnce(t *testing.T) {
	p := newPoller(t)
	server, client := pair(t)
	var runs atomic.Int32
	fired := make(chan struct{}, 10)
	w, err := p.Add(server, func(bool) { runs.Add(1); fired <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Rearm(); err != nil {
		t.Fatal(err)
	}
	w.Stop()
	expect(t, fired, "run on Stop")
	w.Stop()
	if err := w.Rearm(); err != ErrStopped {
		t.Fatalf("Rearm after Stop = %v, want ErrStopped", err)
	}
	if _, err := client.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	expectNone(t, fired, "event after Stop")
	if got := runs.Load(); got != 1 {
		t.Fatalf("f ran %d times, want 1", got)
	}
	if p.Len() != 0 {
		t.Fatalf("Len = %d after Stop, want 0", p.Len())
	}
}

// TestStopWhileRunning: Stop from inside f (or while it runs) does not
// start f again; the running f learns from Rearm.
func TestStopWhileRunning(t *testing.T) {
	p := newPoller(t)
	server, client := pair(t)
	fired := make(chan struct{}, 10)
	var w *Watch
	rearmErr := make(chan error, 1)
	w, err := p.Add(server, func(bool) {
		w.Stop()
		rearmErr <- w.Rearm()
		fired <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Rearm(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, "event")
	if err := <-rearmErr; err != ErrStopped {
		t.Fatalf("Rearm in f after Stop = %v, want ErrStopped", err)
	}
	expectNone(t, fired, "another run after a Stop while running")
}

// TestManySockets: each of many sockets gets its event, and only its own.
func TestManySockets(t *testing.T) {
	p := newPoller(t)
	const n = 200
	counts := make([]atomic.Int32, n)
	done := make(chan struct{}, n)
	clients := make([]net.Conn, n)
	for i := 0; i < n; i++ {
		server, client := pair(t)
		clients[i] = client
		w, err := p.Add(server, func(bool) { counts[i].Add(1); done <- struct{}{} })
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Rearm(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 2 {
		if _, err := clients[i].Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n/2; i++ {
		expect(t, done, "event")
	}
	expectNone(t, done, "event for a silent socket")
	for i := range counts {
		want := int32(0)
		if i%2 == 0 {
			want = 1
		}
		if got := counts[i].Load(); got != want {
			t.Fatalf("socket %d: %d events, want %d", i, got, want)
		}
	}
}

// TestAddRefusesNonSocket: a connection without a descriptor is refused
// with an error, not registered.
func TestAddRefusesNonSocket(t *testing.T) {
	p := newPoller(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := p.Add(a, func(bool) {}); err == nil {
		t.Fatal("Add accepted a net.Pipe")
	}
	if p.Len() != 0 {
		t.Fatalf("Len = %d", p.Len())
	}
}

// TestBlockedCallbackHandsLoopOn: a callback run on the event loop's own
// goroutine that blocks holds up the other sockets' events only until the
// watchdog starts a new loop; the watchdog parks once nothing runs.
func TestBlockedCallbackHandsLoopOn(t *testing.T) {
	p := newPoller(t)
	s1, c1 := pair(t)
	s2, c2 := pair(t)
	release := make(chan struct{})
	inline := make(chan bool, 10)
	w1, err := p.Add(s1, func(in bool) { inline <- in; <-release })
	if err != nil {
		t.Fatal(err)
	}
	fired := make(chan struct{}, 10)
	w2, err := p.Add(s2, func(bool) { fired <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w1.Stop(); w2.Stop() })
	defer close(release) // before the cleanup's Stop runs w1's callback once more
	if err := w1.Rearm(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Rearm(); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case in := <-inline:
		if !in {
			t.Fatal("a lone event ran on a worker, not on the loop's goroutine")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for the first socket")
	}
	if _, err := c2.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, "event while another callback blocks the loop")
	if p.handovers.Load() == 0 {
		t.Error("the second event came with no handover")
	}
	// The new loop goes on serving.
	if err := w2.Rearm(); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, "event after Rearm, data still unread, on the new loop")
	deadline := time.Now().Add(10 * time.Second)
	for !p.dogParked.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the watchdog did not park with nothing running")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEdgeTriggered: an AddEdge watch reports each arrival of data once;
// data that arrives while f runs makes Rearm answer ErrAgain instead of
// being lost, and a Rearm with nothing new costs no event.
func TestEdgeTriggered(t *testing.T) {
	p := newPoller(t)
	server, client := pair(t)
	fired := make(chan struct{}, 10)
	release := make(chan struct{})
	w, err := p.AddEdge(server, func(bool) { fired <- struct{}{}; <-release })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := w.Rearm(); err != nil {
		t.Fatal(err)
	}
	expectNone(t, fired, "event on a silent socket")
	if _, err := client.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, "event for data")
	// While f runs (it waits on release), more data: no second run, but
	// Rearm must not lose it.
	if _, err := client.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	expectNone(t, fired, "a second run while the first is running")
	release <- struct{}{}
	switch err := w.Rearm(); {
	case errors.Is(err, ErrAgain):
		// The loop took the event for "two" while f ran.
	case err == nil:
		// The loop had not taken it yet: it runs f now instead.
		expect(t, fired, "event for data that came while f ran")
		release <- struct{}{}
	default:
		t.Fatal(err)
	}
	// Read everything; a Rearm now arms the watch, and nothing more comes.
	readFull(t, server, len("onetwo"))
	if err := w.Rearm(); err != nil {
		t.Fatal(err)
	}
	expectNone(t, fired, "event after everything was read")
	// New data after Rearm: one event.
	if _, err := client.Write([]byte("three")); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, "event for data after Rearm")
	close(release)
}

// TestIdleWorkersLetGo: a burst that starts more workers than
// maxIdleWorkers leaves no more than that many waiting afterwards, whether
// the watchdog was awake (it lets them go) or parked (they leave at once).
func TestIdleWorkersLetGo(t *testing.T) {
	for _, awake := range []bool{true, false} {
		name := "watchdog-parked"
		if awake {
			name = "watchdog-awake"
		}
		t.Run(name, func(t *testing.T) {
			p := newPoller(t)
			if awake {
				// One event run on the loop wakes the watchdog.
				server, client := pair(t)
				ran := make(chan struct{}, 1)
				w, err := p.Add(server, func(bool) { ran <- struct{}{} })
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Rearm(); err != nil {
					t.Fatal(err)
				}
				if _, err := client.Write([]byte{1}); err != nil {
					t.Fatal(err)
				}
				expect(t, ran, "event")
				t.Cleanup(w.Stop)
			}
			n := 4 * int(maxIdleWorkers)
			gate := make(chan struct{})
			started := make(chan struct{}, n)
			for i := 0; i < n; i++ {
				p.run(&Watch{p: p, f: func(bool) { started <- struct{}{}; <-gate }})
			}
			for i := 0; i < n; i++ {
				expect(t, started, "worker")
			}
			if got := p.workers.Load(); got != int32(n) {
				t.Fatalf("%d workers for %d blocked callbacks", got, n)
			}
			close(gate)
			deadline := time.Now().Add(10 * time.Second)
			for p.workers.Load() > maxIdleWorkers {
				if time.Now().After(deadline) {
					t.Fatalf("%d workers (%d idle) still there after 10s, want at most %d", p.workers.Load(), p.idle.Load(), maxIdleWorkers)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// Those left are used again, not started anew.
			for p.idle.Load() != p.workers.Load() {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d workers still busy after 10s", p.workers.Load()-p.idle.Load(), p.workers.Load())
				}
				time.Sleep(10 * time.Millisecond)
			}
			kept := p.workers.Load()
			gate2 := make(chan struct{})
			for i := int32(0); i < kept; i++ {
				p.run(&Watch{p: p, f: func(bool) { started <- struct{}{}; <-gate2 }})
			}
			for i := int32(0); i < kept; i++ {
				expect(t, started, "worker")
			}
			// One that counted itself idle but was descheduled before
			// it waited for work is not handed any: allow a few.
			if got := p.workers.Load(); got-kept > kept/2 {
				t.Errorf("%d callbacks with %d workers idle started %d new ones", kept, kept, got-kept)
			}
			close(gate2)
		})
	}
}

// fdOf returns c's descriptor number.
func fdOf(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestStopAfterOutsideClose: a socket closed by someone other than its
// watch's owner gives its descriptor number up at once. A new connection
// that gets the number is registered on its own, and the old watch's Stop
// must leave it alone (it once unregistered it by number, and the new
// connection never read again), then still run the old f once.
func TestStopAfterOutsideClose(t *testing.T) {
	for _, edge := range []bool{false, true} {
		t.Run(map[bool]string{false: "oneshot", true: "edge"}[edge], func(t *testing.T) {
			p := newPoller(t)
			add := p.Add
			if edge {
				add = p.AddEdge
			}
			oldServer, _ := pair(t)
			oldFired := make(chan struct{}, 10)
			old, err := add(oldServer, func(bool) { oldFired <- struct{}{} })
			if err != nil {
				t.Fatal(err)
			}
			if err := old.Rearm(); err != nil {
				t.Fatal(err)
			}
			num := fdOf(t, oldServer)
			oldServer.Close() // not through the watch

			// The lowest free number goes to the next descriptor: open
			// connections until one has the old number (each pair takes
			// up to three: listener, client, server).
			var server, client net.Conn
			for i := 0; i < 100 && server == nil; i++ {
				s, c := pair(t)
				if fdOf(t, s) == num {
					server, client = s, c
				} else if fdOf(t, c) == num {
					server, client = c, s
				}
			}
			if server == nil {
				t.Skipf("no new connection got descriptor %d", num)
			}
			fired := make(chan struct{}, 10)
			w, err := add(server, func(bool) { fired <- struct{}{} })
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Rearm(); err != nil {
				t.Fatal(err)
			}

			old.Stop()
			expect(t, oldFired, "run of the stopped watch's f")
			if _, err := client.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			expect(t, fired, "event on the connection that reused the number")
			if err := old.Rearm(); !errors.Is(err, ErrStopped) {
				t.Fatalf("Rearm of the stopped watch: %v, want ErrStopped", err)
			}
			w.Stop()
		})
	}
}

// TestRearmAfterOutsideClose: registering or rearming a watch whose socket
// was closed under it fails, instead of registering whatever connection
// has the number now.
func TestRearmAfterOutsideClose(t *testing.T) {
	p := newPoller(t)
	for _, edge := range []bool{false, true} {
		server, _ := pair(t)
		add := p.Add
		if edge {
			add = p.AddEdge
		}
		w, err := add(server, func(bool) {})
		if err != nil {
			t.Fatal(err)
		}
		server.Close()
		if err := w.Rearm(); err == nil {
			t.Fatalf("edge %v: Rearm registered a closed socket", edge)
		}
		w.Stop()
	}
}
