package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/cluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

func TestWithPort(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":        "10.0.0.1:7946",
		"10.0.0.1:8000":   "10.0.0.1:8000",
		"host":            "host:7946",
		"[::1]":           "[::1]:7946",
		"[::1]:9":         "[::1]:9",
		"node.internal:1": "node.internal:1",
	} {
		if got := withPort(in, 7946); got != want {
			t.Errorf("withPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJoinCluster(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newMember := func(name string) *cluster.Cluster {
		c := cluster.LocalConfig()
		c.Name, c.Role, c.Dev, c.Logger = name, cluster.RoleAuth, true, log
		cl, err := cluster.Create(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Shutdown() })
		return cl
	}
	a, b := newMember("auth-a"), newMember("auth-b")
	ctx := context.Background()
	if err := joinCluster(ctx, b, &options{join: " " + a.GossipAddr() + " ,"}, 7946, log); err != nil {
		t.Fatalf("join: %v", err)
	}
	// Member events are applied asynchronously.
	probe.Until(t, 10*time.Second, "the join to show in Members()", func() error {
		return probe.Equal("members", len(b.Members()), 2)
	})
	// Nothing to join: a new cluster.
	if err := joinCluster(ctx, b, &options{}, 7946, log); err != nil {
		t.Errorf("no join: %v", err)
	}
	// An explicit address nobody answers on is an error.
	if err := joinCluster(ctx, b, &options{join: "127.0.0.1:1"}, 7946, log); err == nil {
		t.Error("join to a dead address: no error")
	}
	if err := joinCluster(ctx, b, &options{joinEC2Tag: "novalue"}, 7946, log); err == nil || !strings.Contains(err.Error(), "-join-ec2-tag") {
		t.Errorf("bad tag: %v", err)
	}

	// EC2 discovery through the emulator: no running instance carries the
	// tag, so the member starts a cluster of its own. (Instances it finds
	// have VPC addresses, which a loopback-only test must not dial.)
	dir := t.TempDir()
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", ec2sim.TestAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", ec2sim.TestSecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := ec2sim.NewServer(ec2sim.DefaultConfig())
	defer srv.Close()
	if err := joinCluster(ctx, b, &options{joinEC2Tag: "wsdirect:cluster=none", ec2Endpoint: srv.URL()}, 7946, log); err != nil {
		t.Errorf("EC2 discovery with no instances: %v", err)
	}
	// A broken endpoint is a clear error.
	if err := joinCluster(ctx, b, &options{joinEC2Tag: "k=v", ec2Endpoint: "not a url"}, 7946, log); err == nil {
		t.Error("bad endpoint: no error")
	}
}
