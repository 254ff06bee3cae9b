package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// forgedCount builds a count payload for name by hand, so these tests say
// exactly what an attacker sends: version 1 is the unsigned format of old,
// version 2 is signed with key (which is not the named member's).
func forgedCount(version byte, name string, seq uint64, conns int, key ed25519.PrivateKey) []byte {
	b := []byte{version}
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(conns))
	b = append(b, name...)
	if key != nil {
		b = append(b, ed25519.Sign(key, append([]byte("wsdirect count v2\x00"), b...))...)
	}
	return b
}

// TestForgedCountFromKeyHolder: a member that holds the gossip key sends
// counts for another node, with the highest sequence number, over serf like
// any member. None is accepted; the real node's counts keep arriving; and
// after the forger leaves, nothing of what it sent is left.
func TestForgedCountFromKeyHolder(t *testing.T) {
	ms := startCluster(t, 3, nil)
	victim, observer, forger := ms[0], ms[1], ms[2]
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	victim.SetConns(5)
	probe.Until(t, 10*time.Second, "the observer sees the victim's count 5", func() error {
		m, _ := observer.member("n1")
		return probe.Check(m.Conns == 5, "not yet: %+v", m)
	})

	seq := uint64(math.MaxUint64 >> 1)
	for _, payload := range [][]byte{
		forgedCount(1, "n1", seq, 999, nil),         // the unsigned format
		forgedCount(2, "n1", seq, 998, strangerKey), // signed, by a key that is not n1's
		forgedCount(2, "n1", seq, 997, forgerKey(forger)),
	} {
		if err := forger.serf.UserEvent(countEventName, payload, false); err != nil {
			t.Fatal(err)
		}
	}
	// The forger's own genuine count does arrive, so its events reach the
	// observer: the forged ones were refused, not lost.
	forger.SetConns(3)
	probe.Until(t, 10*time.Second, "the observer sees the forger's own count 3", func() error {
		m, _ := observer.member("n3")
		return probe.Check(m.Conns == 3, "not yet: %+v", m)
	})
	if m, _ := observer.member("n1"); m.Conns != 5 {
		t.Fatalf("the observer took a forged count for n1: %d", m.Conns)
	}
	victim.SetConns(6)
	probe.Until(t, 10*time.Second, "the observer sees the victim's next count 6", func() error {
		m, _ := observer.member("n1")
		return probe.Check(m.Conns == 6, "not yet: %+v", m)
	})

	// The forger leaves; the victim's counts still win.
	if err := forger.Leave(); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 10*time.Second, "the forger gone", func() error {
		m, ok := observer.member("n3")
		return probe.Check(!ok || !m.Alive, "not yet: %+v", m)
	})
	victim.SetConns(7)
	probe.Until(t, 10*time.Second, "the observer sees the victim's count 7", func() error {
		m, _ := observer.member("n1")
		return probe.Check(m.Conns == 7, "not yet: %+v", m)
	})
	if m, ok := observer.member("n3"); ok && (m.Conns != 0 || !m.UpdatedAt.IsZero()) {
		t.Fatalf("the departed forger's count outlives it: %+v", m)
	}
}

// forgerKey is the forger's own count key when it has one: a real member
// signing a count under another member's name.
func forgerKey(c *Cluster) ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	if c != nil && len(c.countKey) == ed25519.PrivateKeySize {
		return c.countKey
	}
	return k
}

// countingHandler counts records at or above a level.
type countingHandler struct {
	mu    sync.Mutex
	min   slog.Level
	lines []string
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < h.min {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	h.lines = append(h.lines, b.String())
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines)
}

// TestGarbageLogRateLimited: 2,000 garbage packets at the gossip port
// (UDP, and some over TCP) give a bounded number of ERROR lines, not one
// each.
func TestGarbageLogRateLimited(t *testing.T) {
	h := &countingHandler{min: slog.LevelError}
	c := testConfig(1)
	c.Logger = slog.New(h)
	m := mustCreate(t, c)
	before := h.count()
	conn, err := net.Dial("udp", m.GossipAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	junk := make([]byte, 64)
	for i := 0; i < 2000; i++ {
		_, _ = rand.Read(junk)
		junk[0] = byte(i) // every message type, the encrypted one included
		if _, err := conn.Write(junk); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // let the receiver keep up: packets dropped by the kernel prove nothing
		}
	}
	for i := 0; i < 20; i++ {
		tc, err := net.Dial("tcp", m.GossipAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = tc.Write(junk)
		tc.Close()
	}
	// Wait until the receiver has seen them: the lines stop growing.
	last, stable := -1, 0
	for deadline := time.Now().Add(10 * time.Second); stable < 20 && time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if n := h.count(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	got := h.count() - before
	if got == 0 {
		t.Fatal("no ERROR line at all: the garbage never arrived, so the test proves nothing")
	}
	// memberlist has a handful of kinds of error for garbage, each
	// allowed its burst.
	if got > 10*logBurst {
		h.mu.Lock()
		for _, l := range h.lines {
			t.Log(l)
		}
		t.Fatalf("%d ERROR lines for 2,020 garbage packets, want at most %d; first: %q", got, 10*logBurst, h.lines[0])
	}
	t.Logf("%d ERROR lines for 2,020 garbage packets", got)
}

// TestLogLimiterSummary: a kind of line past its burst is suppressed, other
// kinds are not, and the next line that passes says how many were dropped.
func TestLogLimiterSummary(t *testing.T) {
	h := &countingHandler{min: slog.LevelWarn}
	w := &levelWriter{l: slog.New(h), limit: newLogLimiter(3, time.Hour)}
	for i := 0; i < 100; i++ {
		_, _ = w.Write([]byte("[ERR] memberlist: Decrypt packet failed: no key from=127.0.0.1:" + string(rune('0'+i%10))))
	}
	_, _ = w.Write([]byte("[WARN] memberlist: something else"))
	_, _ = w.Write([]byte("[INFO] serf: not limited"))
	if got := h.count(); got != 4 {
		t.Fatalf("%d lines, want 3 of the flood and 1 other warning", got)
	}
	// The bucket refills (an hour here): the next line carries the count.
	w.limit.kinds[logKind("memberlist: Decrypt packet failed:")].lim.SetBurst(10)
	w.limit.kinds[logKind("memberlist: Decrypt packet failed:")].lim.SetLimit(1e9)
	time.Sleep(time.Millisecond)
	_, _ = w.Write([]byte("[ERR] memberlist: Decrypt packet failed: no key from=127.0.0.1:1"))
	h.mu.Lock()
	defer h.mu.Unlock()
	if last := h.lines[len(h.lines)-1]; !strings.Contains(last, "suppressed_since_last=97") {
		t.Fatalf("last line %q, want the 97 suppressed counted", last)
	}
}
