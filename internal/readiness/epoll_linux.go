package readiness

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// events are one-shot and level-triggered: one event per Rearm, repeated
// after Rearm when unread data is still there. RDHUP reports a peer's
// shutdown even when it sent nothing.
const events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// sysPoller is an epoll instance that is itself waited on by the Go
// runtime's netpoller: an epoll descriptor is readable while it has events
// ready. The loop goroutine therefore parks like any goroutine waiting for
// a socket, instead of holding a thread in epoll_wait, and the events it
// hands out are picked up by the scheduler without a thread hand-off each.
type sysPoller struct {
	epfd int
	file *os.File // epfd, registered with the runtime's netpoller
	rc   syscall.RawConn
}

func (s *sysPoller) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	// os.NewFile registers a descriptor with the netpoller only when it
	// is non-blocking.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return err
	}
	s.file = os.NewFile(uintptr(epfd), "readiness-epoll")
	rc, err := s.file.SyscallConn()
	if err != nil {
		s.file.Close()
		return err
	}
	s.epfd, s.rc = epfd, rc
	return nil
}

func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func getID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// edgeEvents are edge-triggered and stay registered: an event for each
// arrival of data, which the owner reads until the socket is empty.
const edgeEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

// add registers fd, armed.
func (s *sysPoller) add(fd int, id uint64, edge bool) error {
	ev := unix.EpollEvent{Events: events}
	if edge {
		ev.Events = edgeEvents
	}
	setID(&ev, id)
	return unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

func (s *sysPoller) rearm(fd int, id uint64) error {
	ev := unix.EpollEvent{Events: events}
	setID(&ev, id)
	return unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

func (s *sysPoller) del(fd int) error {
	return unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// close ends wait: the runtime wakes the parked loop with an error.
func (s *sysPoller) close() error { return s.file.Close() }

// waiter is one event loop goroutine's state for next: the events one
// epoll_wait hands out (under a burst, many per call), how many it handed
// out, and the func RawConn.Read runs, bound once: a closure per call
// would be allocated on every batch.
type waiter struct {
	s      *sysPoller
	events [256]unix.EpollEvent
	n      int
	closed bool
	fn     func(fd uintptr) bool
}

func (s *sysPoller) newWaiter() *waiter {
	w := &waiter{s: s}
	w.fn = w.take
	return w
}

// next waits for events: n of them, id(0) to id(n-1). It returns false
// once the poller is closed.
func (w *waiter) next() bool {
	w.n = 0
	err := w.s.rc.Read(w.fn)
	return err == nil && !w.closed
}

// id returns the i-th event's watch id.
func (w *waiter) id(i int) uint64 { return getID(&w.events[i]) }

func (w *waiter) take(fd uintptr) bool {
	for {
		// Without waiting: the netpoller waits. Park only once no event
		// is left, because the runtime reports only a new edge.
		n, err := unix.EpollWait(int(fd), w.events[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			w.closed = true // the descriptor is gone; nothing more can come
			return true
		}
		if n == 0 {
			return false // park until the epoll descriptor is readable
		}
		w.n = n
		return true
	}
}
