package readiness

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Poller waits for readiness on many sockets with one goroutine.
type Poller struct {
	sys    sysPoller
	table  table
	closed atomic.Bool
	done   chan struct{}

	// work hands a watch to an idle worker. A fresh goroutine per event
	// would start on a small stack and grow it on every message (gorilla's
	// read and write paths are deep), so workers that finish wait here for
	// the next one. The watchdog lets the ones beyond maxIdleWorkers go,
	// half per check while callbacks run and all of them when it parks: a
	// worker that left at once when more than maxIdleWorkers waited was
	// started again at the next batch, and starting and growing workers
	// took 3% of a node's CPU under load (docs/benchmarks.md).
	work chan *Watch
	idle atomic.Int32
	// workers counts the live workers, idle or not.
	workers atomic.Int32

	// inline counts the event loop's own runs of a callback, begun and
	// ended: odd while one runs. The watchdog moves it on when one runs
	// longer than StallAfter, which hands the loop to a new goroutine.
	inline atomic.Uint64
	// dog wakes the watchdog, parked (dogParked) while no callback ran
	// inline for a while.
	dog       chan struct{}
	dogParked atomic.Bool
	// handovers counts the loops the watchdog started.
	handovers atomic.Uint64
}

// StallAfter is how long a callback may run on the event loop's goroutine
// before the watchdog hands the loop to a new goroutine, so that a callback
// that blocks (a write to a peer that stopped reading, the rest of a TLS
// record still on its way) holds up the other sockets' events for at most
// about twice this. Each check wakes a thread, which costs the Go
// scheduler several context switches: at 5 ms the checks took more CPU
// than the hand-offs they saved (docs/benchmarks.md, "Under load").
const StallAfter = 20 * time.Millisecond

// dogQuiet is how many checks without a callback run inline before the
// watchdog parks, so that an idle process wakes for nothing.
const dogQuiet = 10

// maxIdleWorkers is how many workers stay waiting once the event loop is
// quiet, each with its grown stack (about 8 KiB): a few per CPU serve a
// steady message load, and a burst starts more, which the watchdog lets
// go.
var maxIdleWorkers = int32(4 * runtime.GOMAXPROCS(0))

var (
	defaultOnce   sync.Once
	defaultPoller *Poller
	defaultErr    error
)

// Default returns the process's shared Poller, creating it on first use. It
// is never closed: like the runtime's own netpoller, one per process is
// enough, and connections of several servers may share it.
func Default() (*Poller, error) {
	defaultOnce.Do(func() { defaultPoller, defaultErr = New() })
	return defaultPoller, defaultErr
}

// New starts a Poller and its event loop goroutine.
func New() (*Poller, error) {
	p := &Poller{done: make(chan struct{}), work: make(chan *Watch), dog: make(chan struct{}, 1)}
	if err := p.sys.open(); err != nil {
		return nil, fmt.Errorf("readiness: %w", err)
	}
	go p.loop()
	go p.watchdog()
	return p, nil
}

// Add prepares a watch on c's socket; f runs when it becomes readable or is
// hung up. inline is true when f runs on the event loop's own goroutine
// (no thread hand-off: the common case for a few events at a time): f
// should then not wait for anything it can avoid waiting for, and hand
// such work to a goroutine of its own; if it does block, the other
// sockets' events wait until the watchdog moves the loop on (StallAfter).
// c's owner should Stop the watch before it closes c; a socket closed
// first leaves the epoll set with its descriptor, and f is not told. The
// watch starts disarmed, as if f were running, and the socket is not
// registered yet: the owner stores the watch where f can find it, then
// calls Rearm (or runs f itself), which registers it.
func (p *Poller) Add(c net.Conn, f func(inline bool)) (*Watch, error) {
	return p.add(c, f, false)
}

// AddEdge is Add for an owner that reads the socket itself until it is
// empty (a read returned less than asked, or would block) before each
// Rearm. Rearm then costs no system call: the socket stays registered,
// edge-triggered, and an event that comes while f runs makes Rearm return
// ErrAgain, to read once more. Not for a socket read through crypto/tls,
// whose reads do not tell when the socket is empty.
func (p *Poller) AddEdge(c net.Conn, f func(inline bool)) (*Watch, error) {
	return p.add(c, f, true)
}

func (p *Poller) add(c net.Conn, f func(inline bool), edge bool) (*Watch, error) {
	if p.closed.Load() {
		return nil, errors.New("readiness: poller closed")
	}
	rc, err := rawConn(c)
	if err != nil {
		return nil, err
	}
	w := &Watch{p: p, f: f, rc: rc, state: running, edge: edge}
	if err := p.table.add(w); err != nil {
		return nil, err
	}
	return w, nil
}

// Len returns how many sockets are registered.
func (p *Poller) Len() int { return p.table.len() }

// Close stops the event loop. Watches still registered get no more events;
// their owners must have stopped them first.
func (p *Poller) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := p.sys.close()
	<-p.done
	// Let the idle workers go. work stays open: a late Stop may still
	// hand a function over, and then starts a worker of its own.
	for p.idle.Load() > 0 {
		select {
		case p.work <- nil:
		default:
			return err
		}
	}
	return err
}

// run runs w's callback on an idle worker, or on a new one.
func (p *Poller) run(w *Watch) {
	select {
	case p.work <- w:
	default:
		p.workers.Add(1)
		go p.worker(w)
	}
}

func (p *Poller) worker(w *Watch) {
	defer p.workers.Add(-1)
	for {
		w.f(false)
		// With the watchdog parked (no event ran on the loop lately: say
		// Stop's runs of a mass disconnect), nothing would let a surplus
		// worker go later, so it leaves now.
		if p.idle.Add(1) > maxIdleWorkers && p.dogParked.Load() {
			p.idle.Add(-1)
			return
		}
		w = <-p.work
		p.idle.Add(-1)
		if w == nil {
			return // Poller.Close, or one too many (trimWorkers)
		}
	}
}

// rearm is called with w.mu held.
func (p *Poller) rearm(w *Watch) error {
	if w.registered {
		if w.edge {
			return nil
		}
		return p.ctl(w, ctlRearm)
	}
	if err := p.ctl(w, ctlAdd); err != nil {
		return fmt.Errorf("readiness: register: %w", err)
	}
	w.registered = true
	return nil
}

// remove is called with w.mu held.
func (p *Poller) remove(w *Watch) {
	// A socket closed already left the epoll set with its descriptor;
	// ctl then does nothing.
	if w.registered {
		_ = p.ctl(w, ctlDel)
	}
	p.table.remove(w)
}

const (
	ctlAdd = iota
	ctlRearm
	ctlDel
)

// ctl changes w's registration through its socket's RawConn.Control, never
// by a descriptor number kept from before: the runtime holds the
// descriptor open while the change runs, and refuses it once the socket is
// closed. A socket closed by someone other than the watch's owner (a test
// that resets a crashed server's connections, say) gives its number up at
// once, and a new connection in the same process may already have it: an
// EPOLL_CTL_DEL by number then silently unregistered that connection, which
// never read again.
func (p *Poller) ctl(w *Watch, op int) error {
	c := ctls.Get().(*ctlCall)
	c.s, c.op, c.id, c.edge = &p.sys, op, w.id, w.edge
	err := w.rc.Control(c.fn)
	if err == nil {
		err = c.err
	}
	*c = ctlCall{fn: c.fn}
	ctls.Put(c)
	return err
}

// ctlCall is one ctl's state, pooled with its method value bound once, as
// nowRead is: a closure per call would be allocated on every rearm.
type ctlCall struct {
	fn   func(fd uintptr)
	s    *sysPoller
	op   int
	id   uint64
	edge bool
	err  error
}

var ctls = sync.Pool{New: func() any {
	c := new(ctlCall)
	c.fn = c.call
	return c
}}

func (c *ctlCall) call(fd uintptr) {
	switch c.op {
	case ctlAdd:
		c.err = c.s.add(int(fd), c.id, c.edge)
	case ctlRearm:
		c.err = c.s.rearm(int(fd), c.id)
	default:
		c.err = c.s.del(int(fd))
	}
}

// loop is the event loop: it takes the ready sockets' events and runs
// their callbacks, up to inlineBatch on its own goroutine and any more on
// workers. A thread hand-off costs more than most callbacks (waking a
// worker on another thread measured 1.2-1.4x the CPU per message of a
// goroutine per connection), so a few events at a time need none. It
// returns when the poller is closed, or when the watchdog has handed the
// loop to a new goroutine while a callback ran here.
func (p *Poller) loop() {
	wt := p.sys.newWaiter()
	var ready []*Watch
	for {
		if !wt.next() {
			close(p.done)
			return
		}
		ready = ready[:0]
		for i := 0; i < wt.n; i++ {
			if w := p.table.lookup(wt.id(i)); w != nil && w.claim() {
				ready = append(ready, w)
			}
		}
		// Beyond inlineBatch the rest go to workers first, so a burst is
		// spread over the CPUs.
		if len(ready) > inlineBatch {
			for _, w := range ready[inlineBatch:] {
				p.run(w)
			}
			ready = ready[:inlineBatch]
		}
		for i, w := range ready {
			if !p.runInline(w) {
				// This goroutine is no longer the loop: the watches it
				// claimed but has not run go to workers.
				for _, w := range ready[i+1:] {
					p.run(w)
				}
				clear(ready)
				return
			}
		}
		clear(ready)
	}
}

// inlineBatch is how many callbacks of one batch of events the loop runs
// itself, one after the other. A callback typically takes tens of
// microseconds, about what waking a worker on another thread takes, so a
// few in a row are no later than with a hand-off and cost less CPU; a
// burst beyond them is worth the other CPUs.
const inlineBatch = 8

// runInline runs w's callback on the loop's goroutine. It returns false
// when the watchdog handed the loop on meanwhile: this goroutine is then
// no longer the loop.
func (p *Poller) runInline(w *Watch) bool {
	v := p.inline.Add(1)
	if p.dogParked.Load() && p.dogParked.CompareAndSwap(true, false) {
		p.dog <- struct{}{} // never blocks: one wake-up per park
	}
	w.f(true)
	return p.inline.CompareAndSwap(v, v+1)
}

// trimWorkers lets idle workers beyond maxIdleWorkers go: all of them, or
// half (at least one), so that a burst's thousand workers are gone within
// a dozen checks while a steady load keeps about what it uses.
func (p *Poller) trimWorkers(all bool) {
	// A worker counts itself out of idle only once it has woken, so the
	// surplus is taken once, not re-read after each send.
	n := int(p.idle.Load() - maxIdleWorkers)
	if !all {
		n = (n + 1) / 2
	}
	for ; n > 0; n-- {
		select {
		case p.work <- nil:
		default:
			return // none waiting: they are all at work
		}
	}
}

// Handovers returns how many times a callback blocked the event loop for
// longer than StallAfter, so that the watchdog handed the loop to a new
// goroutine.
func (p *Poller) Handovers() uint64 { return p.handovers.Load() }

// watchdog starts a new event loop when a callback has run on the loop's
// goroutine for longer than StallAfter: the callback blocked, and the
// goroutine it runs on becomes an ordinary one when it returns.
func (p *Poller) watchdog() {
	t := time.NewTicker(StallAfter)
	defer t.Stop()
	last, quiet := p.inline.Load(), 0
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		v := p.inline.Load()
		if v&1 == 1 && v == last && p.inline.CompareAndSwap(v, v+1) {
			p.handovers.Add(1)
			go p.loop()
			v++
		}
		p.trimWorkers(false)
		if v != last {
			last, quiet = v, 0
			continue
		}
		if quiet++; quiet < dogQuiet {
			continue
		}
		p.trimWorkers(true)
		// Nothing ran inline for a while: park until something does. The
		// loop increments inline before it looks at dogParked, and this
		// sets dogParked before it looks at inline, so one of the two sees
		// the other.
		t.Stop()
		p.dogParked.Store(true)
		if p.inline.Load() == v {
			select {
			case <-p.dog:
			case <-p.done:
				return
			}
		} else if !p.dogParked.CompareAndSwap(true, false) {
			<-p.dog // the loop took the flag: its wake-up is on the way
		}
		t.Reset(StallAfter)
		last, quiet = p.inline.Load(), 0
	}
}

// rawConn returns what reaches c's descriptor.
func rawConn(c net.Conn) (syscall.RawConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("readiness: %T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("readiness: %w", err)
	}
	return rc, nil
}

// ErrWouldBlock is ReadNow's answer when the socket has nothing to read. It
// is a temporary net.Error, which crypto/tls does not hold against the
// connection: a read through crypto/tls that meets it can be made again.
var ErrWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "readiness: nothing to read yet" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// ReadNow reads c's socket once without waiting: ErrWouldBlock when it
// has nothing, io.EOF when the peer has closed. It bypasses c's deadlines
// and buffers, so c must be the socket itself, not crypto/tls over it.
func ReadNow(c syscall.Conn, p []byte) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	r := nowReads.Get().(*nowRead)
	r.p = p
	err = rc.Read(r.fn)
	n, rerr := r.n, r.err
	*r = nowRead{fn: r.fn}
	nowReads.Put(r)
	if err != nil {
		return 0, err
	}
	switch {
	case rerr == syscall.EAGAIN:
		return 0, ErrWouldBlock
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", rerr)}
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// nowRead is one ReadNow's state. RawConn.Read takes a func, and a closure
// over a read's locals is allocated on every call (some 80 bytes per
// message, which at GOGC 25 on a node's small heap meant a collection
// every second or so under load); a pooled one with its method value
// bound once costs nothing.
type nowRead struct {
	fn  func(fd uintptr) bool // read, bound once
	p   []byte
	n   int
	err error
}

var nowReads = sync.Pool{New: func() any {
	r := new(nowRead)
	r.fn = r.read
	return r
}}

func (r *nowRead) read(fd uintptr) bool {
	for {
		r.n, r.err = syscall.Read(int(fd), r.p)
		if r.err != syscall.EINTR {
			return true // done, whatever the result: never wait
		}
	}
}
