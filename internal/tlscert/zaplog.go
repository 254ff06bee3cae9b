package tlscert

import (
	"context"
	"log/slog"
	"sort"

	"go.uber.org/zap/zapcore"
)

// slogCore is a zapcore.Core that writes to an slog.Handler, so the ACME
// library's zap logs join the process's own structured log.
type slogCore struct {
	h     slog.Handler
	attrs []slog.Attr
}

func newSlogCore(h slog.Handler) zapcore.Core { return &slogCore{h: h} }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	n := &slogCore{h: c.h, attrs: append(append([]slog.Attr(nil), c.attrs...), fieldAttrs(fields)...)}
	return n
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	var attrs []slog.Attr
	if e.LoggerName != "" {
		attrs = append(attrs, slog.String("logger", e.LoggerName))
	}
	attrs = append(append(attrs, c.attrs...), fieldAttrs(fields)...)
	r.AddAttrs(lastOfEachKey(attrs)...)
	return c.h.Handle(context.Background(), r)
}

// lastOfEachKey keeps, for every key, only its last attribute, where it
// first appeared: zap lets a field repeat a key given to With earlier, and
// the JSON handler would write both (a log line with a key twice).
func lastOfEachKey(attrs []slog.Attr) []slog.Attr {
	at := make(map[string]int, len(attrs))
	out := attrs[:0:0]
	for _, a := range attrs {
		if i, ok := at[a.Key]; ok {
			out[i] = a
			continue
		}
		at[a.Key] = len(out)
		out = append(out, a)
	}
	return out
}

func (c *slogCore) Sync() error { return nil }

// fieldAttrs converts zap fields through zap's own map encoder, in a stable
// order.
func fieldAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		out = append(out, slog.Any(k, enc.Fields[k]))
	}
	return out
}
