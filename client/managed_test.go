package client

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/clienttest"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

func TestManagedReconnectsThroughAuthAfterDrain(t *testing.T) {
	fc := clienttest.New(t, 1)
	// The first connection is drained (4000); the second stays.
	fc.Nodes[0].CloseWith(wire.CloseDraining)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var connects atomic.Int32
	var sawDrain atomic.Bool
	second := make(chan struct{})
	echoed := make(chan string, 1)
	cfg := DefaultManagedConfig()
	cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 5*time.Millisecond
	cfg.OnConnect = func(resp *wire.ConnectResponse) {
		if connects.Add(1) == 2 {
			close(second)
		}
	}
	cfg.OnMessage = func(_ int, data []byte) { echoed <- string(data) }
	cfg.OnDisconnect = func(code int, err error) {
		if code == wire.CloseDraining {
			sawDrain.Store(true)
		}
	}
	m := newManaged(t, fc.AuthURL(), alice, cfg)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	select {
	case <-second:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-ctx.Done():
		t.Fatal("no reconnect within 10s")
	}
	if !sawDrain.Load() {
		t.Error("OnDisconnect never saw code 4000")
	}
	if got := fc.AuthCalls.Load(); got != 2 {
		t.Errorf("auth called %d times, want 2 (every reconnect goes through auth)", got)
	}
	toks := fc.Tokens()
	if len(toks) != 2 || toks[0] == toks[1] {
		t.Errorf("tokens issued = %d, distinct = %v; want 2 distinct", len(toks), len(toks) == 2 && toks[0] != toks[1])
	}
	if node, ok := m.Current(); !ok || node != "node-1" {
		t.Errorf("Current() = %q, %v", node, ok)
	}
	// The second connection works end to end.
	if err := m.Send(ctx, websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	select {
	case msg := <-echoed:
		if msg != "hi" {
			t.Errorf("echo = %q", msg)
		}
	case <-ctx.Done():
		t.Fatal("no echo")
	}

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if _, ok := m.Current(); ok {
		t.Error("still connected after Run returned")
	}
	if err := m.Send(context.Background(), websocket.TextMessage, []byte("x")); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send after Run = %v, want ErrNotConnected", err)
	}
}

func TestManagedStopsOnFinalCloseCodes(t *testing.T) {
	for _, code := range []int{websocket.CloseNormalClosure, wire.ClosePolicy} {
		fc := clienttest.New(t, 1)
		fc.Nodes[0].CloseWith(code)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cfg := DefaultManagedConfig()
		cfg.BackoffBase = time.Millisecond
		m := newManaged(t, fc.AuthURL(), alice, cfg)
		err := m.Run(ctx)
		cancel()
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("code %d: Run = %v, want CloseError with that code", code, err)
		}
		if got := fc.AuthCalls.Load(); got != 1 {
			t.Errorf("code %d: auth called %d times, want 1", code, got)
		}
	}
}

func TestManagedStopsOnBadCredentials(t *testing.T) {
	fc := clienttest.New(t, 1)
	m := newManaged(t, fc.AuthURL(), Credentials{Username: "alice", Password: "nope"}, DefaultManagedConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := m.Run(ctx)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("Run = %v, want 401 AuthError", err)
	}
}

// TestManagedBackoff drives a node that always refuses with 503 and checks
// every delay against the full-jitter window, with the jitter source pinned
// to the top of the window, and Retry-After as a floor.
func TestManagedBackoff(t *testing.T) {
	fc := clienttest.New(t, 1)
	fc.Nodes[0].Status.Store(503)
	base, max := 10*time.Millisecond, 80*time.Millisecond

	for _, tc := range []struct {
		name       string
		retryAfter string
		rand       func(n int64) int64
		want       []time.Duration
	}{
		{name: "top of window", rand: func(n int64) int64 { return n - 1 },
			want: []time.Duration{base - 1, 2*base - 1, 4*base - 1, 8*base - 1, max - 1, max - 1}},
		{name: "bottom of window", rand: func(n int64) int64 { return 0 },
			want: []time.Duration{0, 0, 0, 0, 0, 0}},
		{name: "retry-after floor", retryAfter: "1", rand: func(n int64) int64 { return n - 1 },
			want: []time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc.Nodes[0].RetryAfter.Store(tc.retryAfter)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var sleeps []time.Duration
			var windows []int64
			cfg := DefaultManagedConfig()
			cfg.BackoffBase, cfg.BackoffMax = base, max
			cfg.Rand = func(n int64) int64 { windows = append(windows, n); return tc.rand(n) }
			cfg.Sleep = func(ctx context.Context, d time.Duration) error {
				sleeps = append(sleeps, d)
				if len(sleeps) == len(tc.want) {
					cancel()
					return ctx.Err()
				}
				return nil
			}
			m := newManaged(t, fc.AuthURL(), alice, cfg)
			before := fc.AuthCalls.Load()
			if err := m.Run(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v", err)
			}
			if len(sleeps) != len(tc.want) {
				t.Fatalf("sleeps = %v", sleeps)
			}
			for i := range sleeps {
				if sleeps[i] != tc.want[i] {
					t.Errorf("sleep %d = %v, want %v (all: %v)", i, sleeps[i], tc.want[i], sleeps)
				}
			}
			if calls := fc.AuthCalls.Load() - before; int(calls) != len(tc.want) {
				t.Errorf("auth calls = %d, want one per attempt (%d)", calls, len(tc.want))
			}
		})
	}
}

func TestBackoffWindowAndRandomBounds(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	wantWin := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range wantWin {
		if got := b.Window(i); got != w*time.Millisecond {
			t.Errorf("Window(%d) = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if got := b.Window(1000); got != time.Second {
		t.Errorf("Window(1000) = %v (overflow?)", got)
	}
	if got := (Backoff{Base: time.Second}).Window(200); got <= 0 {
		t.Errorf("uncapped Window(200) = %v, overflowed", got)
	}
	// With the real jitter source, delays stay in [0, window) and are not
	// all equal (full jitter, not a fixed step).
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d := b.Delay(3, 0)
		if d < 0 || d >= 800*time.Millisecond {
			t.Fatalf("Delay(3) = %v outside [0, 800ms)", d)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Errorf("only %d distinct delays in 200 draws", len(seen))
	}
}

func TestManagedResetsBackoffAfterStableConnection(t *testing.T) {
	fc := clienttest.New(t, 1)
	fc.Nodes[0].CloseWith(wire.CloseShutdown, wire.CloseShutdown, wire.CloseShutdown)
	var clock atomic.Int64 // fake clock: every reading advances one minute
	now := func() time.Time { return time.Unix(0, clock.Add(int64(time.Minute))) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var windows []int64
	cfg := DefaultManagedConfig()
	cfg.BackoffBase, cfg.BackoffMax, cfg.ResetAfter, cfg.Now = time.Millisecond, time.Second, 30*time.Second, now
	cfg.Rand = func(n int64) int64 { windows = append(windows, n); return 0 }
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		if len(windows) == 3 {
			cancel()
		}
		return ctx.Err()
	}
	m := newManaged(t, fc.AuthURL(), alice, cfg)
	_ = m.Run(ctx)
	// Each connection "lasted" minutes, so every retry starts at Base.
	for i, w := range windows {
		if time.Duration(w) != time.Millisecond {
			t.Errorf("window %d = %v, want reset to 1ms", i, time.Duration(w))
		}
	}
	if len(windows) != 3 {
		t.Errorf("windows = %v, want 3", windows)
	}
}

func TestManagedConcurrentSend(t *testing.T) {
	fc := clienttest.New(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const senders, each = 8, 25
	var got atomic.Int32
	all := make(chan struct{})
	connected := make(chan struct{})
	cfg := DefaultManagedConfig()
	cfg.OnConnect = func(*wire.ConnectResponse) { close(connected) }
	cfg.OnMessage = func(mt int, data []byte) {
		if got.Add(1) == senders*each {
			close(all)
		}
	}
	m := newManaged(t, fc.AuthURL(), alice, cfg)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("never connected")
	}
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := m.Send(ctx, websocket.BinaryMessage, []byte("payload")); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatalf("echoed %d of %d", got.Load(), senders*each)
	}
	cancel()
	<-done
}

func newManaged(t *testing.T, authURL string, creds Credentials, cfg ManagedConfig) *Managed {
	t.Helper()
	m, err := NewManaged(authURL, creds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewManagedValidates(t *testing.T) {
	for field, mod := range map[string]func(*ManagedConfig){
		"BackoffBase":  func(c *ManagedConfig) { c.BackoffBase = 0 },
		"BackoffMax":   func(c *ManagedConfig) { c.BackoffMax = c.BackoffBase / 2 },
		"ResetAfter":   func(c *ManagedConfig) { c.ResetAfter = 0 },
		"ReadLimit":    func(c *ManagedConfig) { c.ReadLimit = 0 },
		"WriteTimeout": func(c *ManagedConfig) { c.WriteTimeout = 0 },
	} {
		c := DefaultManagedConfig()
		mod(&c)
		if _, err := NewManaged("http://127.0.0.1:1", alice, c); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming it", field, err)
		}
	}
	if _, err := NewManaged("http://127.0.0.1:1", alice, DefaultManagedConfig()); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}

// TestManagedRebalance: a close with the rebalance code is handled like a
// drain (back to auth, a fresh token), and the connect requests that follow
// say "rebalance" until one connects, a failed attempt included; after that
// connection ends with another code, the next request says nothing.
func TestManagedRebalance(t *testing.T) {
	fc := clienttest.New(t, 2)
	// auth 1 → node-1, closed with 4003; auth 2 → node-2, refused (503);
	// auth 3 → node-1, closed with 4000; auth 4 → node-2, which stays.
	fc.Nodes[0].CloseWith(wire.CloseRebalance, wire.CloseDraining)
	fc.Nodes[1].Status.Store(503)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var codes []int
	var mu sync.Mutex
	settled := make(chan struct{})
	cfg := DefaultManagedConfig()
	cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 5*time.Millisecond
	cfg.OnDisconnect = func(code int, err error) {
		mu.Lock()
		defer mu.Unlock()
		codes = append(codes, code)
		if code == 0 {
			fc.Nodes[1].Status.Store(0) // refuse once
		}
	}
	cfg.OnConnect = func(resp *wire.ConnectResponse) {
		if fc.AuthCalls.Load() == 4 {
			close(settled)
		}
	}
	m := newManaged(t, fc.AuthURL(), alice, cfg)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-settled:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-ctx.Done():
		t.Fatal("not settled within 10s")
	}
	cancel()
	<-done
	want := []string{"", wire.ReasonRebalance, wire.ReasonRebalance, ""}
	if got := fc.Reasons(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("connect reasons %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(codes) < 3 || codes[0] != wire.CloseRebalance || codes[1] != 0 || codes[2] != wire.CloseDraining {
		t.Fatalf("disconnect codes %v, want 4003, a failed attempt, 4000", codes)
	}
}
