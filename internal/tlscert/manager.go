package tlscert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
)

// Manager holds a process's certificates and its server tls.Config. Create
// it with New, call Start once, and Close when done.
type Manager struct {
	conf    Config
	log     *slog.Logger
	now     func() time.Time
	tlsConf *tls.Config // nil unless the mode serves TLS
	metrics *metrics

	files *fileSource // ModeFiles

	// ModeACME.
	magic  *certmagic.Config
	cache  *certmagic.Cache
	issuer *certmagic.ACMEIssuer

	// mu guards state, lastErr and watchers; notifyMu serialises the
	// watcher calls so they see changes in order.
	mu       sync.Mutex
	notifyMu sync.Mutex
	state    error // nil when ready
	lastErr  error // last obtain, renewal or reload failure, for the not-ready reason
	watchers []func(error)

	httpSrv *http.Server
	httpLn  net.Listener

	started   bool
	cancel    context.CancelFunc
	kick      chan struct{} // re-check ACME certificates now
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New validates conf and prepares the certificate source: in ModeFiles the
// files are read now, and an unreadable, mismatched, expired or
// name-missing pair is an error; in ModeACME the storage directory is
// created and the ACME client set up, but nothing is ordered before Start.
func New(conf *Config) (*Manager, error) {
	if conf == nil {
		return nil, errors.New("tls: nil Config")
	}
	c := *conf
	c.Names = append([]string(nil), conf.Names...)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{conf: c, log: c.Logger, now: c.Now, stop: make(chan struct{}), kick: make(chan struct{}, 1)}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "tls")
	if m.now == nil {
		m.now = time.Now
	}
	reg := c.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	met, err := newMetrics(reg, string(c.Mode))
	if err != nil {
		return nil, err
	}
	m.metrics = met
	switch c.Mode {
	case ModeOff, ModeOffload:
		m.metrics.ready.Set(1)
		return m, nil
	case ModeFiles:
		fs, err := newFileSource(c.CertFile, c.KeyFile, c.Names, m.now)
		if err != nil {
			return nil, err
		}
		m.files = fs
		m.metrics.observeLeaf(fs.current().Leaf)
		m.metrics.ready.Set(1)
	case ModeACME:
		if err := m.setupACME(); err != nil {
			return nil, err
		}
		m.state = fmt.Errorf("no certificate yet for %v from %s", c.Names, c.ACMEDirectory)
	}
	m.tlsConf = m.serverTLSConfig()
	return m, nil
}

// Mode is the configured mode.
func (m *Manager) Mode() Mode { return m.conf.Mode }

// Scheme is the WebSocket scheme clients use to reach this process.
func (m *Manager) Scheme() string { return m.conf.Mode.ClientScheme() }

// TLSConfig is the server configuration, or nil when the process does not
// terminate TLS itself. It is shared: do not modify it.
func (m *Manager) TLSConfig() *tls.Config { return m.tlsConf }

// Listener wraps ln in TLS when the mode serves TLS, and returns it as is
// otherwise.
func (m *Manager) Listener(ln net.Listener) net.Listener {
	if m.tlsConf == nil {
		return ln
	}
	return tls.NewListener(ln, m.tlsConf)
}

// Ready returns nil while the process holds a valid certificate (always in
// ModeOff and ModeOffload), and otherwise why not.
func (m *Manager) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Watch calls f at once with the current readiness (nil or the reason) and
// again on every change, in order, from the Manager's goroutines. f must
// not call back into Watch.
func (m *Manager) Watch(f func(notReady error)) {
	m.notifyMu.Lock()
	defer m.notifyMu.Unlock()
	m.mu.Lock()
	m.watchers = append(m.watchers, f)
	st := m.state
	m.mu.Unlock()
	f(st)
}

// setState records readiness and tells the watchers when it changed.
func (m *Manager) setState(notReady error) {
	m.notifyMu.Lock()
	defer m.notifyMu.Unlock()
	m.mu.Lock()
	old := m.state
	changed := (old == nil) != (notReady == nil) || (old != nil && old.Error() != notReady.Error())
	m.state = notReady
	ws := append([](func(error))(nil), m.watchers...)
	m.mu.Unlock()
	if !changed {
		return
	}
	if notReady == nil {
		m.metrics.ready.Set(1)
		m.log.Info("ready: certificate in place")
	} else {
		m.metrics.ready.Set(0)
		m.log.Warn("not ready", "reason", notReady.Error())
	}
	for _, f := range ws {
		f(notReady)
	}
}

func (m *Manager) setLastErr(err error) {
	m.mu.Lock()
	m.lastErr = err
	m.mu.Unlock()
}

func (m *Manager) getLastErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// Start begins managing certificates: in ModeACME it binds the http-01
// challenge listener (serving fallback for every request that is not a
// challenge) and starts ordering in the background; in ModeFiles it starts
// watching the files. It returns an error only when the challenge listener
// cannot bind. Call it once.
func (m *Manager) Start(ctx context.Context, fallback http.Handler) error {
	if m.started {
		return errors.New("tls: Start called twice")
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(ctx)
	if fallback == nil {
		fallback = http.NotFoundHandler()
	}
	if m.conf.Mode.ServesTLS() && m.conf.Tickets == TicketsCluster {
		m.wg.Add(1)
		go m.rotateTickets()
	}
	switch m.conf.Mode {
	case ModeFiles:
		m.wg.Add(1)
		go m.watchFiles()
	case ModeACME:
		if m.conf.ACMEHTTPAddr != "" {
			ln, err := net.Listen("tcp", m.conf.ACMEHTTPAddr)
			if err != nil {
				return fmt.Errorf("tls: http-01 challenge listener: %w", err)
			}
			m.httpLn = ln
			m.httpSrv = &http.Server{
				Handler:           m.HTTPHandler(fallback),
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       10 * time.Second,
				WriteTimeout:      10 * time.Second,
				IdleTimeout:       30 * time.Second,
				MaxHeaderBytes:    8 << 10,
				ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
			}
			go func() { _ = m.httpSrv.Serve(ln) }()
			m.log.Info("http-01 challenge listener", "addr", ln.Addr().String())
		}
		m.wg.Add(1)
		go m.acmeLoop(ctx)
	}
	return nil
}

// HTTPChallengeAddr is the address the http-01 listener is bound to, or ""
// when there is none.
func (m *Manager) HTTPChallengeAddr() string {
	if m.httpLn == nil {
		return ""
	}
	return m.httpLn.Addr().String()
}

// HTTPHandler answers ACME http-01 challenges and passes every other
// request to next.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.issuer != nil && m.issuer.HandleHTTPChallenge(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// HealthOnly lets GET /healthz and /readyz through to h and answers
// everything else with 404: what a plain-text challenge listener may show.
func HealthOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("this port answers ACME http-01 challenges only; use https\n"))
	})
}

// Reload re-reads the certificate files now (ModeFiles; SIGHUP). A broken
// pair is refused and the served certificate kept. In other modes it does
// nothing.
func (m *Manager) Reload() error {
	if m.files == nil {
		return nil
	}
	err := m.reloadFiles(true)
	m.checkFilesExpiry()
	return err
}

// Close stops the background work and the challenge listener. Connections
// already open are not touched.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		if m.cancel != nil {
			m.cancel()
		}
		if m.httpSrv != nil {
			_ = m.httpSrv.Close()
		}
		m.wg.Wait()
		if m.cache != nil {
			m.cache.Stop()
		}
	})
	return nil
}

// sleep waits d or until the Manager is closed or ctx ends (false).
func (m *Manager) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-m.stop:
		return false
	case <-ctx.Done():
		return false
	}
}
