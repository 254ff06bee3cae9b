package logcheck

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLine(t *testing.T) {
	for line, want := range map[string]string{
		`{"a":1,"b":{"a":2},"c":[{"a":1},{"b":2}]}`: "",
		`{}`:                            "",
		`{"a":1,"a":2}`:                 `duplicate key "a"`,
		`{"a":{"b":1,"b":2}}`:           `duplicate key "a.b"`,
		`{"a":[{"x":1},{"x":1,"x":2}]}`: `duplicate key "a[1].x"`,
		`[1]`:                           "not a JSON object",
		`"x"`:                           "not a JSON object",
		`{"a":1} {"b":2}`:               "more than one JSON value",
		`{"a":`:                         "EOF",
		`time=x level=INFO msg=hi`:      "invalid character",
	} {
		err := Line([]byte(line))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", line, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want %q", line, err, want)
		}
	}
}

// TestLinesSlog: what slog's JSON handler writes when two layers add the
// same key is caught.
func TestLinesSlog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("fine", "component", "cluster")
	if n, err := Lines(buf.Bytes()); err != nil || n != 1 {
		t.Fatalf("one good line: %d, %v", n, err)
	}
	log.With("component", "cluster").Info("twice", "component", "cluster")
	n, err := Lines(buf.Bytes())
	if err == nil || n != 2 || !strings.Contains(err.Error(), `duplicate key "component"`) {
		t.Errorf("duplicate on line 2: %d, %v", n, err)
	}
}
