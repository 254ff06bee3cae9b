package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fileSource serves one certificate read from a PEM pair and swaps it when
// the files change.
type fileSource struct {
	certFile, keyFile string
	names             []string
	now               func() time.Time

	cur atomic.Pointer[tls.Certificate]

	mu    sync.Mutex // serialises reloads; guards stamp
	stamp [2]fileStamp
}

// fileStamp is what tells a changed file apart without reading it. Stat
// follows symlinks, so the atomic symlink swap of mounted secrets shows as
// a new inode.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(path string) (fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	s := fileStamp{size: st.Size(), mtime: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(sys.Ino)
	}
	return s, nil
}

func newFileSource(certFile, keyFile string, names []string, now func() time.Time) (*fileSource, error) {
	f := &fileSource{certFile: certFile, keyFile: keyFile, names: names, now: now}
	stamp, err := f.stamps()
	if err != nil {
		return nil, err
	}
	c, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur.Store(c)
	f.stamp = stamp
	return f, nil
}

func (f *fileSource) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	var err error
	if s[0], err = stampOf(f.certFile); err != nil {
		return s, fmt.Errorf("tls: certificate file: %w", err)
	}
	if s[1], err = stampOf(f.keyFile); err != nil {
		return s, fmt.Errorf("tls: key file: %w", err)
	}
	return s, nil
}

// load reads and checks the pair: it must parse, match, be valid now and
// cover every configured name.
func (f *fileSource) load() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", f.certFile, f.keyFile, err)
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: parse %s: %w", f.certFile, err)
		}
		c.Leaf = leaf
	}
	now := f.now()
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("tls: certificate in %s expired at %s", f.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("tls: certificate in %s is not valid before %s", f.certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	for _, n := range f.names {
		if err := leaf.VerifyHostname(n); err != nil {
			return nil, fmt.Errorf("tls: certificate in %s does not cover %q (it has names %q and IPs %v): clients would refuse it", f.certFile, n, leaf.DNSNames, leaf.IPAddresses)
		}
	}
	return &c, nil
}

func (f *fileSource) current() *tls.Certificate { return f.cur.Load() }

// getCertificate serves the one certificate whatever the server name: it
// is the operator's (usually a wildcard), and a client that sends no name
// (it dialed an IP) must get it too.
func (f *fileSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// errUnchanged reports a reload that found nothing new.
var errUnchanged = errors.New("unchanged")

// reload swaps in the files' pair when they changed (or always, when
// force). It returns errUnchanged when there was nothing to do.
func (f *fileSource) reload(force bool) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stamp, err := f.stamps()
	if err != nil {
		return nil, err
	}
	if !force && stamp == f.stamp {
		return nil, errUnchanged
	}
	c, err := f.load()
	if err != nil {
		return nil, err
	}
	// Recorded only on success: a pair caught half-written (new
	// certificate, old key) is tried again at the next check.
	f.stamp = stamp
	f.cur.Store(c)
	return c, nil
}

// reloadFiles reloads and reports: a new certificate is logged and counted,
// a broken one refused (the served one stays) and counted.
func (m *Manager) reloadFiles(force bool) error {
	c, err := m.files.reload(force)
	switch {
	case errors.Is(err, errUnchanged):
		return nil
	case err != nil:
		m.metrics.errors.WithLabelValues("reload").Inc()
		m.setLastErr(err)
		m.log.Error("certificate reload refused; still serving the previous certificate", "err", err)
		return err
	}
	m.setLastErr(nil)
	m.metrics.observeLeaf(c.Leaf)
	m.log.Info("certificate reloaded", "file", m.conf.CertFile, "names", c.Leaf.DNSNames, "ips", c.Leaf.IPAddresses,
		"not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339), "serial", c.Leaf.SerialNumber.String())
	return nil
}

// watchFiles reloads changed files and re-checks expiry every
// CheckInterval.
func (m *Manager) watchFiles() {
	defer m.wg.Done()
	t := time.NewTicker(m.conf.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		_ = m.reloadFiles(false)
		m.checkFilesExpiry()
	}
}

func (m *Manager) checkFilesExpiry() {
	leaf := m.files.current().Leaf
	if m.now().After(leaf.NotAfter) {
		reason := fmt.Errorf("certificate in %s expired at %s", m.conf.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
		if last := m.getLastErr(); last != nil {
			reason = fmt.Errorf("%w; the replacement was refused: %v", reason, last)
		}
		m.setState(reason)
		return
	}
	m.setState(nil)
}
