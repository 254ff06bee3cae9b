package jsclient

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// nodeBin finds node, or skips the test when it is missing and CI is unset
// (CI must run the JS tests, so there it fails instead).
func nodeBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node is required in CI (apt-get install nodejs): %v", err)
		}
		t.Skipf("node not found, skipping the JavaScript tests: %v", err)
	}
	return p
}

// TestJSUnit runs the module's unit tests (test/wsdirect.test.mjs) under node's
// test runner, so `go test` covers the JavaScript too.
func TestJSUnit(t *testing.T) {
	node := nodeBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap", "test/wsdirect.test.mjs")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test failed: %v\n%s", err, out)
	}
	t.Logf("node --test:\n%s", tail(out, 12))
}

// TestShouldReconnectMatchesWire keeps one close-code table: the JS
// shouldReconnect must agree with wire.ShouldReconnect on every code.
func TestShouldReconnectMatchesWire(t *testing.T) {
	node := nodeBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const script = `import('./wsdirect.js').then((m) => {
  const out = [];
  for (let c = 0; c <= 5000; c++) out.push(m.shouldReconnect(c));
  process.stdout.write(JSON.stringify(out));
});`
	out, err := exec.CommandContext(ctx, node, "--input-type=module", "-e", script).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var js []bool
	if err := json.Unmarshal(out, &js); err != nil {
		t.Fatalf("decode %q: %v", tail(out, 5), err)
	}
	if len(js) != 5001 {
		t.Fatalf("got %d codes, want 5001", len(js))
	}
	for code, got := range js {
		if want := wire.ShouldReconnect(code); got != want {
			t.Errorf("close code %d: JS shouldReconnect = %v, wire.ShouldReconnect = %v", code, got, want)
		}
	}
}

func tail(b []byte, lines int) string {
	n := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n++
			if n > lines {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}
