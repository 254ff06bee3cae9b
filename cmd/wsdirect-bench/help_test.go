package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHelp: "-h" of every command exits 0 and prints its usage and flags
// on stderr, none on stdout; a bad flag exits 2 with the usage.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-h"}, 0, []string{"usage: wsdirect-bench <command>", "compare", "drill"}},
		{[]string{"help"}, 0, []string{"usage: wsdirect-bench <command>"}},
		{[]string{"run", "-h"}, 0, []string{"usage: wsdirect-bench run [flags]", "-auth", "-conns", "-source-ips"}},
		{[]string{"demo", "-h"}, 0, []string{"usage: wsdirect-bench demo [flags]", "-clients", "-bin-dir"}},
		{[]string{"cluster", "-h"}, 0, []string{"usage: wsdirect-bench cluster [flags]", "-nodes", "-auths"}},
		{[]string{"scale", "-h"}, 0, []string{"usage: wsdirect-bench scale [flags]", "-conns", "-workers"}},
		{[]string{"compare", "-h"}, 0, []string{"usage: wsdirect-bench compare [flags]", "-paths", "-haproxy"}},
		{[]string{"drill", "-h"}, 0, []string{"usage: wsdirect-bench drill <kill|drain|auth-restart|haproxy-kill>"}},
		{[]string{"drill", "kill", "-h"}, 0, []string{"usage: wsdirect-bench drill kill [flags]", "-clients", "-timeout"}},
		{[]string{"drill", "haproxy-kill", "-h"}, 0, []string{"usage: wsdirect-bench drill haproxy-kill [flags]", "-haproxy"}},
		{[]string{"rebalance", "-h"}, 0, []string{"usage: wsdirect-bench rebalance [flags]", "-max-rate", "-goal", "-out"}},
		{[]string{"rebalance", "-client-ips", "10.0.0.1"}, 1, []string{"not a loopback address"}},
		{[]string{"idle", "-h"}, 0, []string{"usage: wsdirect-bench idle [flags]", "-node-old-rev", "-marks", "-plot"}},
		{[]string{"idle", "-marks", "1000,x"}, 2, []string{"-marks"}},
		{[]string{"idle", "-servers", "centrifugo"}, 1, []string{`unknown server "centrifugo"`}},

		{nil, 2, []string{"usage: wsdirect-bench <command>", "missing command"}},
		{[]string{"nope"}, 2, []string{"usage: wsdirect-bench <command>", `unknown command "nope"`}},
		{[]string{"run", "-nope"}, 2, []string{"flag provided but not defined: -nope", "usage: wsdirect-bench run [flags]"}},
		{[]string{"run", "extra"}, 2, []string{`unexpected arguments ["extra"]`, "wsdirect-bench run -h"}},
		{[]string{"scale", "-conns", "x"}, 2, []string{"invalid value", "usage: wsdirect-bench scale [flags]"}},
		{[]string{"drill"}, 2, []string{"usage: wsdirect-bench drill <"}},
		{[]string{"drill", "nope"}, 2, []string{`unknown drill "nope"`}},
		{[]string{"drill", "drain", "-nope"}, 2, []string{"usage: wsdirect-bench drill drain [flags]"}},
	} {
		var stdout, stderr bytes.Buffer
		code := exitCode(realMain(context.Background(), tc.args, nil, &stdout, &stderr), &stderr)
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
