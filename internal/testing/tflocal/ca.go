package tflocal

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/pebble"
)

// CA is the ACME CA of a local cloud run: pebble, Let's Encrypt's test server, validating
// as Let's Encrypt does (http-01 on port 80 and tls-alpn-01 on port 443 of the address in
// the certificate: an instance's public address, which the local cloud forwards to the
// instance). modules/cluster's default TLS (tls_mode = "acme") then works unchanged, with
// acme_directory and acme_ca_root pointing at it.
type CA struct {
	p *pebble.Pebble
	// Directory is the ACME directory URL (acme_directory).
	Directory string
	// ListenerRoot is the PEM root of the directory's own https (acme_ca_root).
	ListenerRoot string
	// Roots are what clients trust: the root the CA issues from; IssuerRoot is its PEM.
	Roots      *x509.CertPool
	IssuerRoot string
}

// StartCA runs the CA with its files in dir. The instances' units listen on ports 443 and
// 80, which needs root or CAP_NET_BIND_SERVICE (or a lowered
// net.ipv4.ip_unprivileged_port_start): without, it says so.
func StartCA(dir string) (*CA, error) {
	if err := LowPortsAllowed(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	o := pebble.DefaultOptions()
	o.HTTPPort, o.TLSPort = 80, 443
	p, err := pebble.Run(o, dir)
	if err != nil {
		return nil, err
	}
	root, err := os.ReadFile(p.CAFile)
	if err == nil {
		var issuer []byte
		if issuer, err = p.Roots(); err == nil {
			roots := x509.NewCertPool()
			if roots.AppendCertsFromPEM(issuer) {
				return &CA{p: p, Directory: p.DirectoryURL(), ListenerRoot: string(root), Roots: roots, IssuerRoot: string(issuer)}, nil
			}
			err = errors.New("pebble's issuing root: no certificate")
		}
	}
	p.Close()
	return nil, err
}

// Close stops the CA.
func (ca *CA) Close() {
	if ca != nil {
		ca.p.Close()
	}
}

// ErrLowPorts says this process cannot bind ports below 1024.
var ErrLowPorts = errors.New("the TLS units listen on ports 443 and 80: run as root, with CAP_NET_BIND_SERVICE, or with net.ipv4.ip_unprivileged_port_start lowered")

// LowPortsAllowed reports ErrLowPorts when ports below 1024 cannot be bound here (the local
// cloud runs the units as this user).
func LowPortsAllowed() error {
	ln, err := net.Listen("tcp", "127.255.255.253:443")
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w: %v", ErrLowPorts, err)
	}
	if err == nil {
		ln.Close()
	}
	return nil
}
