//go:build !linux

package readiness

import "errors"

// Only Linux has the epoll loop. Elsewhere New fails, and a caller falls
// back to a goroutine per connection (see node's read loop).
type sysPoller struct{}

var errUnsupported = errors.New("needs Linux (epoll)")

func (s *sysPoller) open() error                 { return errUnsupported }
func (s *sysPoller) add(int, uint64, bool) error { return errUnsupported }
func (s *sysPoller) rearm(int, uint64) error     { return errUnsupported }
func (s *sysPoller) del(int) error               { return errUnsupported }
func (s *sysPoller) close() error                { return nil }

type waiter struct{ n int }

func (s *sysPoller) newWaiter() *waiter { return &waiter{} }
func (w *waiter) next() bool            { return false }
func (w *waiter) id(int) uint64         { return 0 }
