package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/compare"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
)

func TestCompareAndDrillBadArguments(t *testing.T) {
	// -bin-dir points at an empty directory: nothing may start a cluster.
	empty := t.TempDir()
	for _, args := range [][]string{
		{"compare", "-bin-dir", empty, "-conns", "0"},
		{"compare", "-paths", "haproxy-tcp", "-bin-dir", t.TempDir()},
		{"compare", "-paths", "direct,nginx", "-bin-dir", t.TempDir()},
		{"compare", "-from-json", filepath.Join(t.TempDir(), "missing.json")},
		{"compare", "extra"},
		{"drill"},
		{"drill", "-clients", "10"},
		{"drill", "reboot"},
		{"drill", "kill", "-bin-dir", empty, "-client-ips", "10.0.0.1"},
		{"drill", "kill", "-bin-dir", empty, "-in-process", "-clients", "30000"},
		{"drill", "kill", "-bin-dir", empty, "extra"},
	} {
		var out, errOut bytes.Buffer
		if err := realMain(context.Background(), args, nil, &out, &errOut); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestCompareFromJSON(t *testing.T) {
	rep := loadtest.NewReport()
	rep.Connected = 5
	res := compare.CompareResult{Conns: 5, MsgRate: 1, Workers: 1, CPUs: 2, Paths: []compare.PathResult{
		{Path: compare.PathDirect, Report: rep, ConnectRate: 100},
		{Path: compare.PathHAProxyTCP, Report: rep, ConnectRate: 50},
	}}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "compare.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := realMain(context.Background(), []string{"compare", "-from-json", path}, nil, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "haproxy-tcp") || !strings.Contains(out.String(), "0.50") {
		t.Errorf("table:\n%s", out.String())
	}
}
