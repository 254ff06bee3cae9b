package main

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestHelp: -h exits 0 and prints the usage with the flags on the output
// (stderr); a bad flag exits 2 with the flag package's complaint as the
// last lines (a service log keeps the last lines) and a pointer to -h, not
// the whole usage; a bad value after parsing exits 2 naming the flag.
func TestHelp(t *testing.T) {
	flags := []string{"usage: wsdirect-node [flags]", "-auth-keys", "-max-conns", "-gossip-bind", "-gossip-key-file",
		"-join ", "-join-ec2-tag", "-ec2-endpoint", "-log-level", "-dev"}
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-h"}, 0, flags},
		{[]string{"-help"}, 0, flags},
		{[]string{"-nope"}, 2, []string{"flag provided but not defined: -nope\n(wsdirect-node -h lists the flags)\n"}},
		{[]string{"-max-conns", "x"}, 2, []string{`invalid value "x" for flag -max-conns`, "(wsdirect-node -h lists the flags)"}},
		{[]string{"-dev", "-auth-keys", "k", "-join", "h:x"}, 2, []string{"-join", "(wsdirect-node -h lists the flags)"}},
		{[]string{"-dev", "-auth-keys", "k", "-bind", "nohost"}, 2, []string{"-bind", "missing port"}},
		{[]string{"-dev", "-auth-keys", "k", "extra"}, 2, []string{"unexpected arguments"}},
	} {
		var out lockedBuffer
		code := run(context.Background(), tc.args, make(chan os.Signal), &out)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d\n%s", tc.args, code, tc.code, out.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%q: output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
		// A service's log shows its last lines: on a bad command line the
		// last one says what is wrong, not the end of the flag list.
		if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); tc.code == 2 && !strings.HasPrefix(lines[len(lines)-1], "wsdirect-node: ") &&
			!strings.HasPrefix(lines[len(lines)-1], "(wsdirect-node -h") {
			t.Errorf("%q: last line %q does not name the fault", tc.args, lines[len(lines)-1])
		}
	}
}
