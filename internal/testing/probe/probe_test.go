package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPollReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	err := Poll(context.Background(), 10*time.Second, time.Millisecond, "three calls", func() error {
		n++
		return Equal("calls", n, 3)
	})
	if err != nil || n != 3 {
		t.Fatalf("Poll = %v after %d calls, want nil after 3", err, n)
	}
}

func TestPollTimeoutSaysWhatAndLastState(t *testing.T) {
	n := 0
	err := Poll(context.Background(), 30*time.Millisecond, 5*time.Millisecond, "the moon", func() error {
		n++
		return fmt.Errorf("saw %d clouds", n)
	})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Poll of a false condition = %v, want ErrTimeout", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "the moon") || !strings.Contains(msg, fmt.Sprintf("saw %d clouds", n)) {
		t.Errorf("message %q lacks what was awaited or the last state (call %d)", msg, n)
	}
	// Bounded in count: 30ms at 5ms is at most 30/5+2 checks, however the
	// scheduler behaves. (Only the count is asserted: time on a loaded
	// machine proves nothing.)
	if n < 1 || n > 30/5+2 {
		t.Errorf("%d checks", n)
	}
}

func TestPollChecksOnceWithoutTimeout(t *testing.T) {
	n := 0
	err := Poll(context.Background(), 0, time.Hour, "once", func() error { n++; return errors.New("no") })
	if !errors.Is(err, ErrTimeout) || n != 1 {
		t.Fatalf("Poll(timeout 0) = %v after %d checks, want ErrTimeout after 1", err, n)
	}
}

func TestPollStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Poll(ctx, time.Hour, time.Millisecond, "cancel", func() error {
		n++
		if n == 2 {
			cancel()
		}
		return errors.New("not yet")
	})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) || n != 2 {
		t.Fatalf("Poll = %v after %d checks, want context.Canceled after 2", err, n)
	}
}

func TestPollStopsOnStop(t *testing.T) {
	exited := errors.New("process exited")
	n := 0
	err := Poll(context.Background(), time.Hour, time.Millisecond, "readiness", func() error {
		n++
		if n == 2 {
			return Stop(exited)
		}
		return errors.New("not ready")
	})
	if !errors.Is(err, exited) || errors.Is(err, ErrTimeout) || n != 2 || !strings.Contains(err.Error(), "waiting for readiness") {
		t.Fatalf("Poll = %v after %d checks, want the stop error after 2", err, n)
	}
}

// fakeTB records Fatalf instead of stopping the goroutine.
type fakeTB struct{ fatal string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
}

func TestUntil(t *testing.T) {
	var ok fakeTB
	Until(&ok, time.Second, "true", func() error { return nil })
	if ok.fatal != "" {
		t.Fatalf("a holding condition failed the test: %s", ok.fatal)
	}
	var bad fakeTB
	Until(&bad, 20*time.Millisecond, "a green light", func() error { return Check(false, "light is %s", "red") })
	if !strings.Contains(bad.fatal, "waiting for a green light") || !strings.Contains(bad.fatal, "last seen: light is red") {
		t.Fatalf("Until failure = %q", bad.fatal)
	}
}

func TestEqualAndCheck(t *testing.T) {
	if Equal("x", 1, 1) != nil || Check(true, "unused") != nil {
		t.Fatal("a holding condition reported an error")
	}
	if err := Equal("conns", 2, 3); err == nil || err.Error() != "conns = 2, want 3" {
		t.Errorf("Equal = %v", err)
	}
	if err := Check(false, "%d left", 4); err == nil || err.Error() != "4 left" {
		t.Errorf("Check = %v", err)
	}
}

func TestFreePortIsFreeForTCPAndUDP(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	port, err := FreePort(ip)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP %s: %v", addr, err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("UDP %s: %v", addr, err)
	}
	u.Close()
	if p := LoopbackPort(t); p <= 0 || p > 65535 {
		t.Errorf("LoopbackPort = %d", p)
	}
	if _, err := FreePort(netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("a port on an address this host does not have: no error")
	}
}

func TestSharedFreePort(t *testing.T) {
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.5")}
	port, err := SharedFreePort(ips...)
	if err != nil {
		t.Fatal(err)
	}
	if port < 20000 || port >= 32000 {
		t.Fatalf("port %d outside 20000-31999", port)
	}
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("%s:%d: %v", ip, port, err)
		}
		l.Close()
	}
}

// Stop(nil) means the condition holds: a decoding step that succeeded, say.
func TestPollStopNilIsSuccess(t *testing.T) {
	n := 0
	err := Poll(context.Background(), time.Hour, time.Millisecond, "a decoded answer", func() error {
		n++
		return Stop(nil)
	})
	if err != nil || n != 1 {
		t.Fatalf("Poll = %v after %d checks, want nil after 1", err, n)
	}
}
