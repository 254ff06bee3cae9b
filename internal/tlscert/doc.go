// Package tlscert is the certificate machinery both wsdirect binaries share:
// wsdirect-node serves wss:// with it and wsdirect-auth serves https://.
//
// A Config selects one of four modes, set by the same flags on both
// binaries (RegisterFlags):
//
//   - ModeFiles: a certificate and key from PEM files, for example a
//     wildcard *.ws.example.com bought or issued elsewhere. The files are
//     re-read on Reload (the binaries call it on SIGHUP) and whenever they
//     change on disk (checked every CheckInterval), so a renewed certificate
//     takes effect for new handshakes while every open connection stays up.
//     A broken replacement is refused and the previous certificate kept.
//   - ModeACME: the process obtains and renews its own certificates from an
//     ACME CA with certmagic. The identifiers are DNS names or IP addresses;
//     an IP identifier is ordered under the "shortlived" profile unless
//     another is named (Let's Encrypt issues IP certificates only there,
//     validated by http-01 or tls-alpn-01) and never appears in the CSR's
//     Common Name. Certificates live in ACMEStorage, so a restart does not
//     order again, and are renewed when a third of their lifetime is left
//     (or when the CA's renewal info says so).
//   - ModeOff: plain ws:// and http://, allowed only on loopback or with
//     -dev (CheckListener).
//   - ModeOffload: a plain listener behind something that terminates TLS
//     (a proxy on the host, a TLS load balancer); clients are still sent to
//     wss://.
//
// Readiness. A process in ModeFiles or ModeACME is ready only while it holds
// a certificate that has not expired. Until then Ready returns the reason,
// Watch reports it to the node (which stays out of assignment and answers
// /readyz with 503 and the reason), the reason is logged, and the
// wsdirect_tls_ready gauge is 0. An ACME order that fails is retried with
// exponential backoff and jitter between RetryMin and RetryMax.
//
// TLS settings. TLS 1.2 and 1.3 only, AEAD cipher suites with ECDHE for
// 1.2, ECDSA P-256 keys for ACME certificates by default, and session
// resumption on. Session ticket keys (Tickets) are by default derived from
// a secret every member of the cluster already holds (the gossip key), per
// rotation period, with HKDF and a label of their own: auth instances behind
// one name resume each other's sessions, and a restarted node or auth
// instance resumes the sessions of its previous life. See TicketsCluster for
// the trade-off and the alternatives.
//
// SNI. Clients that dial an IP address send no server name. The ACME
// mode then serves the certificate of the connection's local address, and
// else the first name in Names (a node behind EC2's 1:1 NAT sees its
// private address locally but holds a certificate for its public one).
package tlscert
