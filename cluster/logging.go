package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// newStdLogger bridges serf's and memberlist's *log.Logger to slog. Both
// libraries prefix lines with "[DEBUG]", "[INFO]", "[WARN]" or "[ERR]";
// the prefix picks the slog level so memberlist's chatty debug lines stay
// out of info logs.
func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(&levelWriter{l: l, limit: newLogLimiter(logBurst, logEvery)}, "", 0)
}

// Warnings and errors are rate-limited per kind of line. memberlist logs one
// ERROR line per packet it cannot decrypt or decode, so anyone who can send
// UDP to the gossip port could otherwise write a log line per packet, as
// fast as they can send (2,000 packets gave 2,055 lines). logBurst lines of
// one kind pass at once, then one per logEvery; the next line that passes
// says how many were suppressed.
const (
	logBurst = 5
	logEvery = 10 * time.Second
	// logKinds bounds the per-kind table; further kinds share one bucket.
	logKinds = 64
)

type levelWriter struct {
	l     *slog.Logger
	limit *logLimiter
}

var levelPrefixes = []struct {
	prefix []byte
	level  slog.Level
}{
	{[]byte("[DEBUG]"), slog.LevelDebug},
	{[]byte("[TRACE]"), slog.LevelDebug},
	{[]byte("[INFO]"), slog.LevelInfo},
	{[]byte("[WARN]"), slog.LevelWarn},
	{[]byte("[ERR]"), slog.LevelError},
	{[]byte("[ERROR]"), slog.LevelError},
}

func (w *levelWriter) Write(p []byte) (int, error) {
	msg := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, lp := range levelPrefixes {
		if bytes.HasPrefix(msg, lp.prefix) {
			level = lp.level
			msg = bytes.TrimSpace(msg[len(lp.prefix):])
			break
		}
	}
	ctx := context.Background()
	if !w.l.Enabled(ctx, level) {
		return len(p), nil
	}
	text := string(msg)
	if level >= slog.LevelWarn {
		ok, suppressed := w.limit.allow(logKind(text), time.Now())
		if !ok {
			return len(p), nil
		}
		if suppressed > 0 {
			w.l.Log(ctx, level, text, "suppressed_since_last", suppressed)
			return len(p), nil
		}
	}
	w.l.Log(ctx, level, text)
	return len(p), nil
}

// logKind is what lines of one kind share: their first words, digits
// masked. The rest may be the peer's address or bytes of the packet itself
// (memberlist quotes an unacceptable label), which must not make every line
// a kind of its own.
func logKind(msg string) string {
	words := strings.Fields(msg)
	if len(words) > 4 {
		words = words[:4]
	}
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, strings.Join(words, " "))
}

// logLimiter is a token bucket (golang.org/x/time/rate) per kind of line.
type logLimiter struct {
	burst int
	every time.Duration

	mu    sync.Mutex
	kinds map[string]*logBucket
}

type logBucket struct {
	lim        *rate.Limiter
	suppressed int
}

func newLogLimiter(burst int, every time.Duration) *logLimiter {
	return &logLimiter{burst: burst, every: every, kinds: make(map[string]*logBucket)}
}

// allow reports whether a line of kind may be logged now, and how many
// lines of that kind were suppressed since the last one that was.
func (l *logLimiter) allow(kind string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.kinds[kind]
	if b == nil {
		if len(l.kinds) >= logKinds {
			kind = "" // the shared bucket for all further kinds
			b = l.kinds[kind]
		}
		if b == nil {
			b = &logBucket{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
			l.kinds[kind] = b
		}
	}
	if !b.lim.AllowN(now, 1) {
		b.suppressed++
		return false, 0
	}
	n := b.suppressed
	b.suppressed = 0
	return true, n
}
