package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/tflocal"
)

// tfdemoCmd is `make demo-terraform`: modules/cluster applied, scaled and destroyed on the
// local cloud with the real terraform, the provider installed from a filesystem mirror.
func tfdemoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := tflocal.DefaultDemoConfig()
	fs := flag.NewFlagSet("tfdemo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "the module's root: binaries are built from it and modules/cluster comes from it")
	work := fs.String("work-dir", ".localcloud-demo", "new or empty directory for the build, the provider mirror, the local cloud and the Terraform state")
	fs.StringVar(&cfg.Terraform, "terraform", "bin/terraform", "terraform binary")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "node_count of the first apply")
	fs.IntVar(&cfg.ScaleTo, "scale-to", cfg.ScaleTo, "node_count of the second apply")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "clients connected after the first apply")
	fs.IntVar(&cfg.ScaleClients, "scale-clients", cfg.ScaleClients, "clients connected after the scale-out")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "connections set up at once")
	// Own address ranges and a free port, so a local cloud of the user's own can keep running.
	cfg.Cloud.Listen = "127.0.0.1:0"
	vpc := fs.String("vpc-cidr", "127.40.0.0/16", "the local cloud's VPC")
	public := fs.String("public-cidr", "127.41.0.0/16", "the local cloud's public and Elastic IPs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.Cloud.VPCCIDR, err = netip.ParsePrefix(*vpc); err != nil {
		return fmt.Errorf("-vpc-cidr: %w", err)
	}
	if cfg.Cloud.PublicCIDR, err = netip.ParsePrefix(*public); err != nil {
		return fmt.Errorf("-public-cidr: %w", err)
	}
	for _, p := range []*string{repo, work, &cfg.Terraform} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	cfg.RepoDir, cfg.WorkDir, cfg.Out = *repo, *work, stdout
	_, err = tflocal.Demo(ctx, cfg)
	return err
}
