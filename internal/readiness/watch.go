package readiness

import (
	"errors"
	"sync"
	"syscall"
)

// ErrStopped is returned by Rearm once the Watch is stopped.
var ErrStopped = errors.New("readiness: watch stopped")

// ErrAgain is returned by Rearm on an edge-triggered watch (AddEdge) when
// data arrived while f ran: f reads again, then calls Rearm again.
var ErrAgain = errors.New("readiness: data arrived meanwhile")

type state uint8

const (
	armed   state = iota // registered and waiting; an event starts f
	running              // f is running (or about to); events are off
	stopped              // unregistered; f runs no more once it returns
)

// Watch is one registered socket.
type Watch struct {
	p  *Poller
	f  func(inline bool)
	rc syscall.RawConn // the socket's descriptor, only while it is open
	id uint64

	edge bool // AddEdge

	mu         sync.Mutex
	state      state
	registered bool // with the system poller: from the first Rearm
	pending    bool // edge: an event came while f ran
}

// claim reports whether an event starts f: the watch was armed, and is
// now running. Called by the event loop.
func (w *Watch) claim() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != armed {
		if w.state == running && w.edge {
			w.pending = true // edge-triggered: this event comes only once
		}
		return false
	}
	w.state = running
	return true
}

// Rearm asks for the next readiness event. Only the running f calls it,
// when it has read what it wanted; f must then return without touching the
// socket's read side, since the next event may start f again at once. It
// returns ErrStopped when the watch was stopped meanwhile: the owner's f
// then cleans up; and, on an edge-triggered watch, ErrAgain when data
// arrived while f ran: f is still the reader, reads, and calls Rearm
// again.
func (w *Watch) Rearm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == stopped {
		return ErrStopped
	}
	if w.pending {
		w.pending = false
		return ErrAgain
	}
	w.state = armed
	if err := w.p.rearm(w); err != nil {
		w.state = running
		return err
	}
	return nil
}

// Stop unregisters the socket; call it before closing the socket. When the
// watch was armed (no f running), f is started once more so that the
// owner's read side sees the closed socket and cleans up in one place;
// when f is running, the running f sees ErrStopped from Rearm or a read
// error. Stop is idempotent, and safe from any goroutine, including f.
func (w *Watch) Stop() {
	w.mu.Lock()
	prev := w.state
	if prev == stopped {
		w.mu.Unlock()
		return
	}
	w.state = stopped
	w.p.remove(w)
	w.mu.Unlock()
	if prev == armed {
		w.p.run(w)
	}
}
