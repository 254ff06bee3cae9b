package main

import (
	"strings"
	"testing"
)

// TestHelp: -h of the service and of each subcommand exits 0 and prints
// the usage with the flags on stderr, none on stdout; a bad flag exits 2
// with the flag package's complaint and a pointer to -h (not the whole
// usage, which would push the complaint out of a service log's tail).
func TestHelp(t *testing.T) {
	serveFlags := []string{"usage:", "wsdirect-auth keygen -out", "wsdirect-auth hash-password -user",
		"-signing-key", "-users", "-gossip-key-file", "-join ", "-join-ec2-tag", "-log-level"}
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-h"}, 0, serveFlags},
		{[]string{"--help"}, 0, serveFlags},
		{[]string{"help"}, 0, serveFlags},
		{[]string{"keygen", "-h"}, 0, []string{"usage: wsdirect-auth keygen -out <dir>", "-out"}},
		{[]string{"hash-password", "-h"}, 0, []string{"usage: echo -n <password> | wsdirect-auth hash-password", "-user", "-cost"}},

		{[]string{"-nope"}, 2, []string{"flag provided but not defined: -nope\n(wsdirect-auth -h lists the flags)\n"}},
		{[]string{"-log-level", "loud"}, 2, []string{`invalid value "loud" for flag -log-level`, "(wsdirect-auth -h lists the flags)"}},
		{[]string{"-dev", "-users", "u"}, 2, []string{"-signing-key is required", "(wsdirect-auth -h lists the flags)"}},
		{[]string{"keygen", "-nope"}, 2, []string{"flag provided but not defined: -nope", "(wsdirect-auth keygen -h lists the flags)"}},
		{[]string{"keygen"}, 2, []string{"-out is required", "(wsdirect-auth keygen -h lists the flags)"}},
		{[]string{"hash-password", "-cost", "x"}, 2, []string{`invalid value "x" for flag -cost`, "(wsdirect-auth hash-password -h lists the flags)"}},
		{[]string{"hash-password", "-user", "a", "extra"}, 2, []string{"unexpected arguments", "(wsdirect-auth hash-password -h lists the flags)"}},
	} {
		code, stdout, stderr := run(t, "", tc.args...)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d\n%s", tc.args, code, tc.code, stderr)
		}
		if stdout != "" {
			t.Errorf("%q: output on stdout: %q", tc.args, stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
		// A service's log shows its last lines: on a bad command line the
		// last one says what is wrong, not the end of the flag list.
		if lines := strings.Split(strings.TrimSpace(stderr), "\n"); tc.code == 2 && !strings.HasPrefix(lines[len(lines)-1], "wsdirect-auth: ") &&
			!strings.HasPrefix(lines[len(lines)-1], "(wsdirect-auth") {
			t.Errorf("%q: last line %q does not name the fault", tc.args, lines[len(lines)-1])
		}
		if strings.Contains(stderr, "wsdirect-auth -h for flags") {
			t.Errorf("%q: the usage points back at itself", tc.args)
		}
	}
}
