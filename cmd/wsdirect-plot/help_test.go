package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelp: -h exits 0 and prints the usage with the command's flags on
// stderr; a bad flag exits 2 with the usage.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-h"}, 0, []string{"usage: wsdirect-plot", "balance", "rebalance", "wsdirect-plot balance -h"}},
		{[]string{"rebalance", "-h"}, 0, []string{"usage: wsdirect-plot rebalance [flags]", "-in", "-out"}},
		{[]string{"help"}, 0, []string{"usage: wsdirect-plot"}},
		{[]string{"balance", "-h"}, 0, []string{"usage: wsdirect-plot balance [flags]", "-out", "-rates", "-seed"}},
		{[]string{"balance", "-nope"}, 2, []string{"flag provided but not defined: -nope", "usage: wsdirect-plot balance [flags]", "-out"}},
		{[]string{"balance", "-nodes", "x"}, 2, []string{"invalid value", "-nodes", "usage: wsdirect-plot balance [flags]"}},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d", tc.args, code, tc.code)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: usage on stdout: %q", tc.args, stdout.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, w, stderr.String())
			}
		}
	}
}
