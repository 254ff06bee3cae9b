package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newStdLogger bridges serf's and memberlist's *log.Logger to slog. Both
// libraries prefix lines with "[DEBUG]", "[INFO]", "[WARN]" or "[ERR]";
// the prefix picks the slog level so memberlist's chatty debug lines stay
// out of info logs.
func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(levelWriter{l}, "", 0)
}

type levelWriter struct{ l *slog.Logger }

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

func (w levelWriter) Write(p []byte) (int, error) {
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
	if w.l.Enabled(ctx, level) {
		w.l.Log(ctx, level, string(msg))
	}
	return len(p), nil
}
