package readiness

import (
	"errors"

	"golang.org/x/sys/unix"
)

// wakeID marks the event of the eventfd that interrupts wait on Close; real
// watches start at 1.
const wakeID = 0

// events are one-shot and level-triggered: one event per Rearm, repeated
// after Rearm when unread data is still there. RDHUP reports a peer's
// shutdown even when it sent nothing.
const events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

type sysPoller struct {
	epfd int
	wfd  int // eventfd
}

func (s *sysPoller) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	wfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wfd)
		return err
	}
	s.epfd, s.wfd = epfd, wfd
	return nil
}

func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func getID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// add registers fd, armed.
func (s *sysPoller) add(fd int, id uint64) error {
	ev := unix.EpollEvent{Events: events}
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

func (s *sysPoller) wake() error {
	_, err := unix.Write(s.wfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	return err
}

func (s *sysPoller) close() error {
	return errors.Join(unix.Close(s.epfd), unix.Close(s.wfd))
}

// wait delivers events until closed reports true after a wake.
func (s *sysPoller) wait(fire func(id uint64), closed func() bool) {
	// 256 events per call: under a burst one call hands out many, and the
	// array lives on this goroutine's stack.
	var evs [256]unix.EpollEvent
	for {
		n, err := unix.EpollWait(s.epfd, evs[:], -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			// EBADF/EINVAL: the descriptor is gone; nothing more can come.
			return
		}
		for i := 0; i < n; i++ {
			id := getID(&evs[i])
			if id == wakeID {
				if closed() {
					return
				}
				continue
			}
			fire(id)
		}
	}
}
