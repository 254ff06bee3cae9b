package readiness

import (
	"errors"
	"sync"
)

// ErrStopped is returned by Rearm once the Watch is stopped.
var ErrStopped = errors.New("readiness: watch stopped")

type state uint8

const (
	armed   state = iota // registered and waiting; an event starts f
	running              // f is running (or about to); events are off
	stopped              // unregistered; f runs no more once it returns
)

// Watch is one registered socket.
type Watch struct {
	p  *Poller
	f  func()
	fd int
	id uint64

	mu         sync.Mutex
	state      state
	registered bool // with the system poller: from the first Rearm
}

// fire starts f if the watch is armed. Called by the poller on an event.
func (w *Watch) fire() {
	w.mu.Lock()
	if w.state != armed {
		w.mu.Unlock()
		return
	}
	w.state = running
	w.mu.Unlock()
	w.p.run(w.f)
}

// Rearm asks for the next readiness event. Only the running f calls it,
// when it has read what it wanted; f must then return without touching the
// socket's read side, since the next event may start f again at once. It
// returns ErrStopped when the watch was stopped meanwhile: the owner's f
// then cleans up.
func (w *Watch) Rearm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == stopped {
		return ErrStopped
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
		w.p.run(w.f)
	}
}
