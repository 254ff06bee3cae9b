package readiness

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// shards splits the registration table so a connect burst does not
// serialise on one lock with the event loop's lookups.
const shards = 64

type shard struct {
	mu sync.Mutex
	m  map[uint64]*Watch
}

// Poller waits for readiness on many sockets with one goroutine.
type Poller struct {
	sys    sysPoller
	nextID atomic.Uint64
	shards [shards]shard
	closed atomic.Bool
	done   chan struct{}

	// work hands a function to an idle worker. A fresh goroutine per
	// event would start on a small stack and grow it on every message
	// (gorilla's read and write paths are deep), so workers that finish
	// wait here for the next one; up to maxIdle of them.
	work chan func()
	idle atomic.Int32
}

// maxIdleWorkers bounds the workers kept waiting, each with its grown
// stack (about 8 KiB): a few per CPU serve a steady message load, and a
// burst starts more, which then exit.
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
	p := &Poller{done: make(chan struct{}), work: make(chan func())}
	for i := range p.shards {
		p.shards[i].m = make(map[uint64]*Watch)
	}
	if err := p.sys.open(); err != nil {
		return nil, fmt.Errorf("readiness: %w", err)
	}
	go p.loop()
	return p, nil
}

// Add prepares a watch on c's socket; f runs, in a new goroutine, when it
// becomes readable or is hung up. c must be a socket whose descriptor
// stays open until Watch.Stop has returned. The watch starts disarmed, as
// if f were running, and the socket is not registered yet: the owner
// stores the watch where f can find it, then calls Rearm (or runs f
// itself), which registers it.
func (p *Poller) Add(c net.Conn, f func()) (*Watch, error) {
	if p.closed.Load() {
		return nil, errors.New("readiness: poller closed")
	}
	fd, err := socketFD(c)
	if err != nil {
		return nil, err
	}
	w := &Watch{p: p, f: f, fd: fd, id: p.nextID.Add(1), state: running}
	s := &p.shards[w.id%shards]
	s.mu.Lock()
	s.m[w.id] = w
	s.mu.Unlock()
	return w, nil
}

// Len returns how many sockets are registered.
func (p *Poller) Len() int {
	n := 0
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

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

// run runs f on an idle worker, or on a new one.
func (p *Poller) run(f func()) {
	select {
	case p.work <- f:
	default:
		go p.worker(f)
	}
}

func (p *Poller) worker(f func()) {
	for {
		f()
		if p.idle.Add(1) > maxIdleWorkers {
			p.idle.Add(-1)
			return
		}
		f = <-p.work
		p.idle.Add(-1)
		if f == nil {
			return // Poller.Close
		}
	}
}

// rearm is called with w.mu held.
func (p *Poller) rearm(w *Watch) error {
	if w.registered {
		return p.sys.rearm(w.fd, w.id)
	}
	if err := p.sys.add(w.fd, w.id); err != nil {
		return fmt.Errorf("readiness: register: %w", err)
	}
	w.registered = true
	return nil
}

// remove is called with w.mu held.
func (p *Poller) remove(w *Watch) {
	// The descriptor is still open (Stop comes before the socket's
	// Close), so this cannot hit a reused number.
	if w.registered {
		_ = p.sys.del(w.fd)
	}
	s := &p.shards[w.id%shards]
	s.mu.Lock()
	delete(s.m, w.id)
	s.mu.Unlock()
}

func (p *Poller) lookup(id uint64) *Watch {
	s := &p.shards[id%shards]
	s.mu.Lock()
	w := s.m[id]
	s.mu.Unlock()
	return w
}

func (p *Poller) loop() {
	defer close(p.done)
	p.sys.wait(func(id uint64) {
		if w := p.lookup(id); w != nil {
			w.fire()
		}
	})
}

// socketFD returns c's descriptor. The number is used only while the
// socket is open (see Poller.Add), so reading it outside Control is safe.
func socketFD(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("readiness: %T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("readiness: %w", err)
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return 0, fmt.Errorf("readiness: %w", err)
	}
	return fd, nil
}
