package localcloud

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"go.yaml.in/yaml/v3"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

// TestIMDS: IMDSv2 only, and the real SDK client reads what the binaries need (region,
// public IPv4, role credentials) through AWS_EC2_METADATA_SERVICE_ENDPOINT.
func TestIMDS(t *testing.T) {
	in := ec2sim.Instance{
		ID: "i-0123456789abcdef0", ReservationID: "r-1", ImageID: "ami-1", InstanceType: "t3.small",
		AvailabilityZone: "eu-west-1b", VpcID: "vpc-1", IamInstanceProfile: "arn:aws:iam::123456789012:instance-profile/wsdirect-node",
		UserData: "I2Nsb3VkLWNvbmZpZwo=", PrivateIP: "127.10.2.5", PrivateDNSName: "ip-127-10-2-5.eu-west-1.compute.internal",
		PublicIP: "127.20.0.9", PublicDNSName: "ec2-127-20-0-9.eu-west-1.compute.amazonaws.com",
		NetworkInterfaces: []ec2sim.NetworkInterface{{ID: "eni-1", SubnetID: "subnet-1", MAC: "0e:00:00:00:00:01", SubnetCIDR: "127.10.2.0/24",
			PrivateIPs: []string{"127.10.2.5", "127.10.2.6"}, PublicIPs: []string{"127.20.0.9", ""}}},
	}
	public := true
	m, err := startIMDS(in.ID, "eu-west-1", "123456789012", func(id string) (ec2sim.Instance, bool) {
		i := in
		if !public {
			i.PublicIP = ""
		}
		return i, id == in.ID
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()

	// IMDSv1 (no token) is refused.
	resp, err := http.Get(m.URL() + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("IMDSv1 request: %s, want 401", resp.Status)
	}

	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", m.URL())
	c := imds.New(imds.Options{})
	ctx := context.Background()
	region, err := c.GetRegion(ctx, nil)
	if err != nil || region.Region != "eu-west-1" {
		t.Fatalf("region %+v %v", region, err)
	}
	get := func(path string) string {
		t.Helper()
		out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer out.Content.Close()
		raw, _ := io.ReadAll(out.Content)
		return string(raw)
	}
	for path, want := range map[string]string{
		"instance-id": in.ID, "local-ipv4": "127.10.2.5", "public-ipv4": "127.20.0.9", "mac": "0e:00:00:00:00:01",
		"placement/availability-zone":                                      "eu-west-1b",
		"network/interfaces/macs/0e:00:00:00:00:01/local-ipv4s":            "127.10.2.5\n127.10.2.6",
		"network/interfaces/macs/0e:00:00:00:00:01/subnet-ipv4-cidr-block": "127.10.2.0/24",
		"iam/security-credentials/":                                        "wsdirect-node",
	} {
		if got := get(path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if l := get(""); !strings.Contains(l, "network/") || !strings.Contains(l, "public-ipv4") {
		t.Errorf("meta-data listing:\n%s", l)
	}
	var cred struct{ Code, AccessKeyId, SecretAccessKey, Token, Expiration string }
	if err := json.Unmarshal([]byte(get("iam/security-credentials/wsdirect-node")), &cred); err != nil || cred.Code != "Success" || !strings.HasPrefix(cred.AccessKeyId, "ASIA") {
		t.Fatalf("credentials %+v %v", cred, err)
	}
	doc, err := c.GetInstanceIdentityDocument(ctx, nil)
	if err != nil || doc.InstanceID != in.ID || doc.Region != "eu-west-1" || doc.PrivateIP != "127.10.2.5" {
		t.Fatalf("identity document %+v %v", doc, err)
	}
	ud, err := c.GetUserData(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(ud.Content)
	if string(raw) != "#cloud-config\n" {
		t.Fatalf("user data %q", raw)
	}
	// No public address: 404, which -advertise auto turns into a clear error.
	public = false
	if _, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "public-ipv4"}); err == nil {
		t.Fatal("public-ipv4 without a public address answered")
	}
}

// TestReleaseNamesMatchGoreleaser: the local release uses the archive and checksum names
// .goreleaser.yml gives the real release, which modules/cluster downloads.
func TestReleaseNamesMatchGoreleaser(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", ".goreleaser.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		ProjectName string `yaml:"project_name"`
		Archives    []struct {
			ID           string   `yaml:"id"`
			Formats      []string `yaml:"formats"`
			NameTemplate string   `yaml:"name_template"`
		} `yaml:"archives"`
		Checksum struct {
			NameTemplate string `yaml:"name_template"`
		} `yaml:"checksum"`
	}
	if err := yaml.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	expand := func(tmpl string) string {
		return strings.NewReplacer("{{ .ProjectName }}", g.ProjectName, "{{ .Version }}", "1.2.3", "{{ .Os }}", "linux", "{{ .Arch }}", "arm64").Replace(tmpl)
	}
	if g.ProjectName != ReleaseProject || expand(g.Checksum.NameTemplate) != ChecksumsName("1.2.3") {
		t.Errorf("checksums: goreleaser %q (%s), local %q", expand(g.Checksum.NameTemplate), g.ProjectName, ChecksumsName("1.2.3"))
	}
	seen := 0
	for _, a := range g.Archives {
		if a.ID != "wsdirect-node" && a.ID != "wsdirect-auth" {
			continue
		}
		seen++
		if got, want := expand(a.NameTemplate)+"."+a.Formats[0], ArchiveName(a.ID, "1.2.3", "arm64"); got != want {
			t.Errorf("archive %s: goreleaser %q, local %q", a.ID, got, want)
		}
	}
	if seen != 2 {
		t.Fatalf("found %d server archives in .goreleaser.yml, want 2", seen)
	}

	// And the archives hold the binary at their root, with the checksums file listing them.
	dir := t.TempDir()
	bin := filepath.Join(dir, "wsdirect-node")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := BuildRelease(filepath.Join(dir, "rel"), "1.2.3", "amd64", map[string]string{"wsdirect-node": bin})
	if err != nil || len(files) != 1 || files[0].Name != "wsdirect-node_1.2.3_linux_amd64.tar.gz" {
		t.Fatalf("BuildRelease: %+v %v", files, err)
	}
	sums, err := os.ReadFile(filepath.Join(dir, "rel", ChecksumsName("1.2.3")))
	if err != nil || string(sums) != files[0].SHA256+"  "+files[0].Name+"\n" {
		t.Fatalf("SHA256SUMS %q %v", sums, err)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := DefaultConfig()
	ok.WorkDir = "/tmp/x"
	if err := ok.validate(); err != nil {
		t.Fatalf("default config with a work dir: %v", err)
	}
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"zero":            {func(c *Config) { *c = Config{} }, "Config.WorkDir is required"},
		"relative dir":    {func(c *Config) { c.WorkDir = "x" }, "absolute path"},
		"not loopback":    {func(c *Config) { c.Listen = "0.0.0.0:4599" }, "Config.Listen"},
		"region":          {func(c *Config) { c.Region = "mars" }, "Config.Region"},
		"vpc off host":    {func(c *Config) { c.VPCCIDR = mustPrefix("10.0.0.0/16") }, "Config.VPCCIDR"},
		"public overlaps": {func(c *Config) { c.PublicCIDR = mustPrefix("127.10.5.0/24") }, "overlaps Config.VPCCIDR"},
		"stop timeout":    {func(c *Config) { c.MaxStopTimeout = 0 }, "Config.MaxStopTimeout"},
		"scan":            {func(c *Config) { c.ScanInterval = -time.Second }, "Config.ScanInterval"},
		"release version": {func(c *Config) { c.ReleaseBinaries = map[string]string{"wsdirect-node": "/b"}; c.ReleaseVersion = "v1" }, "Config.ReleaseVersion"},
		"release path":    {func(c *Config) { c.ReleaseBinaries = map[string]string{"wsdirect-node": "b"} }, "absolute path"},
		"service":         {func(c *Config) { c.Services = map[string]http.Handler{"ec2": http.NotFoundHandler()} }, "served by the emulator"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			if err := c.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate: %v, want %q", err, tc.want)
			}
		})
	}
	// A work directory that is not a local cloud's is refused rather than cleared.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := ok
	c.WorkDir = dir
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("New in a foreign directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
		t.Fatal("New touched a foreign directory")
	}
}
