package readiness

import (
	"errors"
	"sync"
	"sync/atomic"
)

// table finds the watch an event's id names without a lock or a hash: the
// event loop looks up every event, and a sharded map cost it a lock, a
// hash and a cold bucket each (about 2% of a node's CPU under load). An id
// is a slot's index in its low 32 bits and a serial number in its high
// ones, so an event still queued for a watch removed since, whose slot a
// new watch took, finds another id there and is dropped.
type table struct {
	mu     sync.Mutex // add and remove
	free   []uint32   // slots given back, taken first
	used   uint32     // slots ever handed out
	serial uint32
	chunks [maxChunks]atomic.Pointer[chunk]
}

const (
	// chunkSize slots are allocated at a time, 8 KiB.
	chunkSize = 1024
	// maxChunks bounds the table at 4M watches, far beyond the
	// descriptors a process can have open.
	maxChunks = 4096
)

type chunk [chunkSize]atomic.Pointer[Watch]

var errTableFull = errors.New("readiness: too many sockets registered")

// add gives w a slot and its id.
func (t *table) add(w *Watch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var slot uint32
	if n := len(t.free); n > 0 {
		slot = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if t.used == maxChunks*chunkSize {
			return errTableFull
		}
		slot = t.used
		t.used++
		if slot%chunkSize == 0 {
			t.chunks[slot/chunkSize].Store(new(chunk))
		}
	}
	t.serial++
	w.id = uint64(t.serial)<<32 | uint64(slot)
	t.chunks[slot/chunkSize].Load()[slot%chunkSize].Store(w)
	return nil
}

// remove frees w's slot.
func (t *table) remove(w *Watch) {
	slot := uint32(w.id)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.chunks[slot/chunkSize].Load()[slot%chunkSize].CompareAndSwap(w, nil) {
		t.free = append(t.free, slot)
	}
}

// lookup returns the watch id names, or nil when it is gone.
func (t *table) lookup(id uint64) *Watch {
	slot := uint32(id)
	if slot >= maxChunks*chunkSize {
		return nil
	}
	c := t.chunks[slot/chunkSize].Load()
	if c == nil {
		return nil
	}
	if w := c[slot%chunkSize].Load(); w != nil && w.id == id {
		return w
	}
	return nil
}

// len returns how many watches hold a slot.
func (t *table) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(t.used) - len(t.free)
}
