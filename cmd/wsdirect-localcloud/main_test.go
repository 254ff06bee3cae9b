package main

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/localcloud"
)

// TestClientCommands runs env, status and kill against a running local cloud, found through
// its work directory, and the usage errors.
func TestClientCommands(t *testing.T) {
	cfg := localcloud.DefaultConfig()
	cfg.WorkDir = filepath.Join(t.TempDir(), "lc")
	cfg.Listen = "127.0.0.1:0"
	cfg.VPCCIDR = netip.MustParsePrefix("127.36.0.0/16")
	cfg.PublicCIDR = netip.MustParsePrefix("127.37.0.0/16")
	c, err := localcloud.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	}()

	runCmd := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := run(args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, _ := runCmd("env", "-work-dir", cfg.WorkDir); code != 0 || !strings.Contains(out, "export AWS_ENDPOINT_URL_EC2='"+c.URL()+"'") {
		t.Fatalf("env: %d\n%s", code, out)
	}
	if code, out, _ := runCmd("status", "-work-dir", cfg.WorkDir); code != 0 || !strings.HasPrefix(out, "INSTANCE") {
		t.Fatalf("status: %d\n%s", code, out)
	}
	if code, _, errOut := runCmd("kill", "-work-dir", cfg.WorkDir, "i-00000000"); code != 1 || !strings.Contains(errOut, "no instance i-00000000") {
		t.Fatalf("kill of an unknown instance: %d %s", code, errOut)
	}
	if code, _, _ := runCmd("kill", "-work-dir", cfg.WorkDir); code != 2 {
		t.Fatalf("kill without an instance: exit %d, want 2", code)
	}
	if code, _, errOut := runCmd("status", "-work-dir", t.TempDir()); code != 1 || !strings.Contains(errOut, "no local cloud in") {
		t.Fatalf("status without a local cloud: %d %s", code, errOut)
	}
	if code, _, _ := runCmd("frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
	if code, _, errOut := runCmd("serve", "-work-dir", t.TempDir(), "-vpc-cidr", "10.0.0.0/16"); code != 1 || !strings.Contains(errOut, "Config.VPCCIDR") {
		t.Fatalf("serve with a VPC off this machine: %d %s", code, errOut)
	}
}
