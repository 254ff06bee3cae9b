package tlscert

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/logcheck"
)

// TestZapBridgeOneKeyOnce: the ACME library's zap lines reach the JSON log
// as one object each with no key twice, even when a field repeats a key
// given to With (the later value wins) or is named like the logger.
func TestZapBridgeOneKeyOnce(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	z := zap.New(newSlogCore(h)).Named("obtain").With(zap.String("identifier", "a.example.com"), zap.String("issuer", "x"))
	z.Info("renewing", zap.String("identifier", "b.example.com"), zap.String("logger", "field"), zap.Int("attempt", 2))
	z.Debug("plain")
	n, err := logcheck.Lines(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if n != 2 || len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", n, buf.String())
	}
	first, second := lines[0], lines[1]
	if !strings.Contains(first, `"identifier":"b.example.com"`) || strings.Contains(first, "a.example.com") ||
		!strings.Contains(first, `"logger":"field"`) || !strings.Contains(first, `"issuer":"x"`) || !strings.Contains(first, `"attempt":2`) {
		t.Errorf("line with repeated keys: %s", first)
	}
	if !strings.Contains(second, `"logger":"obtain"`) || !strings.Contains(second, `"identifier":"a.example.com"`) {
		t.Errorf("line with the With fields only: %s", second)
	}
}
