// Package ec2simtest starts internal/ec2sim servers for tests in other packages: the server
// is closed when the test ends, and a configuration or listen error fails the test instead of
// being returned.
package ec2simtest

import (
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

// New starts an emulator with cfg on a loopback port for the rest of the test.
func New(t testing.TB, cfg ec2sim.Config) *ec2sim.Server {
	t.Helper()
	s, err := ec2sim.NewServer(cfg)
	if err != nil {
		t.Fatalf("ec2simtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// AddSubnet adds a subnet to s (see ec2sim.Server.AddSubnet), failing the test on an error.
func AddSubnet(t testing.TB, s *ec2sim.Server, id, vpcID, cidr, az string) {
	t.Helper()
	if err := s.AddSubnet(id, vpcID, cidr, az); err != nil {
		t.Fatalf("ec2simtest: %v", err)
	}
}
