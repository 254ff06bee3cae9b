package tlscert

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// cipherSuites12 are the TLS 1.2 suites offered: ECDHE key exchange (forward
// secrecy) and AEAD ciphers only, as in Mozilla's "intermediate" profile.
// TLS 1.3 suites are not configurable and all are AEAD.
var cipherSuites12 = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverTLSConfig builds the shared server configuration.
func (m *Manager) serverTLSConfig() *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: cipherSuites12,
		// HTTP/1.1 only: a WebSocket upgrade needs it, and auth's one
		// request per client gains nothing from HTTP/2.
		NextProtos: []string{"http/1.1"},
		// Counts full and resumed handshakes (wsdirect_tls_handshakes_total).
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume {
				m.metrics.resumed.Inc()
			} else {
				m.metrics.full.Inc()
			}
			return nil
		},
	}
	switch m.conf.Mode {
	case ModeFiles:
		c.GetCertificate = m.files.getCertificate
	case ModeACME:
		c.GetCertificate = m.magic.GetCertificate
		if m.conf.ACMETLSALPN {
			c.NextProtos = append(c.NextProtos, acmez.ACMETLS1Protocol)
		}
	}
	switch m.conf.Tickets {
	case TicketsOff:
		c.SessionTicketsDisabled = true
	case TicketsCluster:
		c.SetSessionTicketKeys(m.ticketKeys(m.now()))
	}
	return c
}

// ticketKeys derives the keys for the rotation period holding now: the
// current one first (it encrypts new tickets), then the next period's (a
// member whose clock is ahead may already issue with it) and the TicketKeep
// previous ones.
func (m *Manager) ticketKeys(now time.Time) [][32]byte {
	period := now.UnixNano() / int64(m.conf.TicketRotation)
	keys := make([][32]byte, 0, m.conf.TicketKeep+2)
	keys = append(keys, deriveTicketKey(m.conf.TicketSecret, period), deriveTicketKey(m.conf.TicketSecret, period+1))
	for i := int64(1); i <= int64(m.conf.TicketKeep); i++ {
		keys = append(keys, deriveTicketKey(m.conf.TicketSecret, period-i))
	}
	return keys
}

// deriveTicketKey is HKDF-SHA256 of the shared secret with a label of its
// own and the period number: the secret itself never keys anything here.
func deriveTicketKey(secret []byte, period int64) [32]byte {
	var info [8]byte
	binary.BigEndian.PutUint64(info[:], uint64(period))
	k, err := hkdf.Key(sha256.New, secret, nil, "wsdirect tls session ticket key v1 "+string(info[:]), 32)
	if err != nil {
		panic("tlscert: hkdf: " + err.Error()) // only for lengths sha256 cannot give
	}
	var out [32]byte
	copy(out[:], k)
	return out
}

// rotateTickets installs the next set of ticket keys at each period
// boundary.
func (m *Manager) rotateTickets() {
	defer m.wg.Done()
	for {
		now := m.now()
		rot := int64(m.conf.TicketRotation)
		next := time.Unix(0, (now.UnixNano()/rot+1)*rot)
		t := time.NewTimer(next.Sub(now))
		select {
		case <-m.stop:
			t.Stop()
			return
		case <-t.C:
		}
		m.tlsConf.SetSessionTicketKeys(m.ticketKeys(m.now()))
	}
}

type metrics struct {
	ready    prometheus.Gauge
	notAfter prometheus.Gauge
	errors   *prometheus.CounterVec
	full     prometheus.Counter
	resumed  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, mode string) (*metrics, error) {
	labels := prometheus.Labels{"mode": mode}
	m := &metrics{
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wsdirect_tls_ready", ConstLabels: labels,
			Help: "1 while a valid certificate is held (always 1 when TLS is off or offloaded).",
		}),
		notAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wsdirect_tls_certificate_not_after_seconds", ConstLabels: labels,
			Help: "Expiry (Unix time) of the certificate served, the earliest when there are several.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsdirect_tls_certificate_errors_total", ConstLabels: labels,
			Help: "Failed attempts to obtain, renew or reload a certificate.",
		}, []string{"op"}),
	}
	handshakes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsdirect_tls_handshakes_total", ConstLabels: labels,
		Help: "Completed TLS handshakes, full or resumed from a session ticket.",
	}, []string{"resumed"})
	m.full, m.resumed = handshakes.WithLabelValues("false"), handshakes.WithLabelValues("true")
	for _, op := range []string{"obtain", "renew", "reload"} {
		m.errors.WithLabelValues(op)
	}
	for _, c := range []prometheus.Collector{m.ready, m.notAfter, m.errors, handshakes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observeLeaf(leaf *x509.Certificate) {
	if leaf != nil {
		m.notAfter.Set(float64(leaf.NotAfter.Unix()))
	}
}
