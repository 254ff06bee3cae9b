package haproxycfg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultBinary is where Debian and Ubuntu install haproxy.
const DefaultBinary = "/usr/sbin/haproxy"

// FindBinary returns the haproxy binary to use: $WSDIRECT_HAPROXY when
// set, else DefaultBinary, else "haproxy" on $PATH.
func FindBinary() (string, error) {
	if p := os.Getenv("WSDIRECT_HAPROXY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("WSDIRECT_HAPROXY=%s: %w", p, err)
		}
		return p, nil
	}
	if _, err := os.Stat(DefaultBinary); err == nil {
		return DefaultBinary, nil
	}
	p, err := exec.LookPath("haproxy")
	if err != nil {
		return "", fmt.Errorf("haproxy not found at %s nor on PATH (install the haproxy package or set WSDIRECT_HAPROXY)", DefaultBinary)
	}
	return p, nil
}

// CheckResult is what "haproxy -c" said about a configuration.
type CheckResult struct {
	// Output is haproxy's combined stdout and stderr.
	Output string
	// Warnings lists the [WARNING] lines; a clean config has none.
	Warnings []string
}

// Check runs "<binary> -c -f <file>" on config, the same syntax and
// semantic check HAProxy does before (re)loading. env adds "NAME=value"
// entries to haproxy's environment, for configs with "${NAME}" source
// IPs. It returns an error holding haproxy's output when the configuration
// is rejected.
func Check(ctx context.Context, binary, config string, env ...string) (CheckResult, error) {
	dir, err := os.MkdirTemp("", "haproxycfg-check-")
	if err != nil {
		return CheckResult{}, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		return CheckResult{}, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, "-c", "-f", file)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	runErr := cmd.Run()
	res := CheckResult{Output: out.String()}
	for _, l := range strings.Split(res.Output, "\n") {
		if strings.Contains(l, "[WARNING]") {
			res.Warnings = append(res.Warnings, strings.TrimSpace(l))
		}
	}
	if runErr != nil {
		var exit *exec.ExitError
		if errors.As(runErr, &exit) {
			return res, fmt.Errorf("haproxy -c rejected the configuration (exit %d):\n%s", exit.ExitCode(), res.Output)
		}
		return res, fmt.Errorf("running %s: %w", binary, runErr)
	}
	return res, nil
}
