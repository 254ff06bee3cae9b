package tlscert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// setupACME builds certmagic's cache, config and ACME issuer.
func (m *Manager) setupACME() error {
	c := &m.conf
	var roots *x509.CertPool
	if c.ACMECARoots != "" {
		pem, err := os.ReadFile(c.ACMECARoots)
		if err != nil {
			return fmt.Errorf("tls: -acme-ca-root: %w", err)
		}
		// Extra roots: the system's stay trusted.
		if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: -acme-ca-root %s holds no PEM certificate", c.ACMECARoots)
		}
	}
	if err := os.MkdirAll(c.ACMEStorage, 0o700); err != nil {
		return fmt.Errorf("tls: -acme-storage: %w", err)
	}
	zl := zap.New(newSlogCore(m.log.With("library", "certmagic").Handler()))

	var keyType certmagic.KeyType
	switch c.KeyType {
	case KeyP256:
		keyType = certmagic.P256
	case KeyP384:
		keyType = certmagic.P384
	case KeyRSA2048:
		keyType = certmagic.RSA2048
	}
	var magic *certmagic.Config
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: c.RenewCheckInterval,
		Logger:             zl,
	})
	magic = certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: c.RenewalWindowRatio,
		KeySource:          certmagic.StandardKeyGenerator{KeyType: keyType},
		Storage:            &certmagic.FileStorage{Path: c.ACMEStorage},
		// A hello without a server name (the client dialed an IP) gets
		// the local address's certificate, else this one: behind 1:1 NAT
		// the local address is the private one.
		DefaultServerName: c.Names[0],
		OnEvent:           m.onEvent,
		ShouldEmitFunc: func(event string) bool {
			return event == "cert_obtained" || event == "cert_failed"
		},
		Logger: zl,
	})

	profile := c.ACMEProfile
	if profile == "" && HasIP(c.Names) {
		profile = ProfileShortLived
	}
	tmpl := certmagic.ACMEIssuer{
		CA:                      c.ACMEDirectory,
		Email:                   c.ACMEEmail,
		Agreed:                  true, // running in ACME mode is the operator's agreement; nobody is there to ask
		DisableHTTPChallenge:    c.ACMEHTTPAddr == "",
		DisableTLSALPNChallenge: !c.ACMETLSALPN,
		Profile:                 profile,
		TrustedRoots:            roots,
		Logger:                  zl,
	}
	// The challenges are answered by the listeners this package serves:
	// certmagic finds the address in use and answers through them.
	var listenHost string
	if c.ACMEHTTPAddr != "" {
		host, port, _ := net.SplitHostPort(c.ACMEHTTPAddr)
		listenHost = host
		if tmpl.AltHTTPPort, _ = strconv.Atoi(port); tmpl.AltHTTPPort == 0 {
			tmpl.AltHTTPPort = 80
		}
	}
	if c.ACMETLSALPN {
		host, port, _ := net.SplitHostPort(c.ListenAddr)
		if listenHost == "" {
			listenHost = host
		}
		tmpl.AltTLSALPNPort, _ = strconv.Atoi(port)
	}
	tmpl.ListenHost = listenHost
	m.issuer = certmagic.NewACMEIssuer(magic, tmpl)
	magic.Issuers = []certmagic.Issuer{quietIssuer{m.issuer}}
	m.magic = magic
	return nil
}

// quietIssuer never prompts: certmagic's synchronous path asks on stdin for
// an e-mail address when none is configured, and a server has nobody there.
type quietIssuer struct{ *certmagic.ACMEIssuer }

func (q quietIssuer) PreCheck(ctx context.Context, names []string, _ bool) error {
	return q.ACMEIssuer.PreCheck(ctx, names, false)
}

// acmeLoop obtains the first certificates (or loads them from storage),
// retrying with backoff, then keeps readiness in step with them. Renewal is
// certmagic's, in its cache's maintenance goroutine.
func (m *Manager) acmeLoop(ctx context.Context) {
	defer m.wg.Done()
	c := &m.conf
	delay := c.RetryMin
	for {
		err := m.magic.ManageSync(ctx, c.Names)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		m.metrics.errors.WithLabelValues("obtain").Inc()
		m.setLastErr(err)
		// Full jitter within [delay/2, delay]: a fleet that lost its CA at
		// once does not come back at once.
		wait := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
		m.setState(fmt.Errorf("no certificate for %s from %s yet (retrying in %s): %v", strings.Join(c.Names, ", "), c.ACMEDirectory, wait.Round(time.Millisecond), err))
		if !m.sleep(ctx, wait) {
			return
		}
		delay = min(2*delay, c.RetryMax)
	}
	for {
		m.checkACME()
		t := time.NewTimer(c.CheckInterval)
		select {
		case <-t.C:
		case <-m.kick:
			t.Stop()
		case <-m.stop:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// checkACME is ready when every name has a certificate that has not
// expired; it also publishes the earliest expiry.
func (m *Manager) checkACME() {
	now := m.now()
	var earliest time.Time
	for _, name := range m.conf.Names {
		var best time.Time
		for _, cert := range m.cache.AllMatchingCertificates(name) {
			if cert.Leaf != nil && cert.Leaf.NotAfter.After(best) {
				best = cert.Leaf.NotAfter
			}
		}
		if best.IsZero() || !now.Before(best) {
			reason := fmt.Errorf("no valid certificate for %s", name)
			if !best.IsZero() {
				reason = fmt.Errorf("certificate for %s expired at %s", name, best.UTC().Format(time.RFC3339))
			}
			if last := m.getLastErr(); last != nil {
				reason = fmt.Errorf("%w; last renewal error: %v", reason, last)
			}
			m.setState(reason)
			return
		}
		if earliest.IsZero() || best.Before(earliest) {
			earliest = best
		}
	}
	m.metrics.notAfter.Set(float64(earliest.Unix()))
	m.setState(nil)
}

// onEvent follows certmagic's obtain and renewal outcomes.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		m.setLastErr(nil)
		renewal, _ := data["renewal"].(bool)
		m.log.Info("certificate obtained", "identifier", data["identifier"], "renewal", renewal, "issuer", data["issuer"])
		if renewal {
			// Served from the next handshake on; open connections keep
			// theirs. Readiness and the expiry gauge follow at once.
			select {
			case m.kick <- struct{}{}:
			default:
			}
		}
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		renewal, _ := data["renewal"].(bool)
		op := "obtain"
		if renewal {
			op = "renew"
			// Obtain failures are counted by acmeLoop, once per attempt.
			m.metrics.errors.WithLabelValues(op).Inc()
		}
		m.setLastErr(err)
		m.log.Warn("certificate "+op+" failed", "identifier", data["identifier"], "err", err)
	}
	return nil
}
