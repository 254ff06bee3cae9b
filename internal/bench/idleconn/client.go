package idleconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/srcbind"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// ClientCommand is the subcommand under which the harness's executable runs
// one client worker. It reads a ClientConfig as one JSON line on stdin,
// then commands, one a line, each answered by one JSON ClientStatus line on
// stdout:
//
//	open N   open connections until N are held (N is this worker's total)
//	close    close every connection
//
// It exits, closing everything, when stdin closes.
const ClientCommand = "idle-client"

// ClientConfig is one worker's part of a run.
type ClientConfig struct {
	// URL is the server's ws:// address for a direct connection; empty
	// when AuthURL is set.
	URL string `json:"url,omitempty"`
	// AuthURL, Username and Password: every connection is first a POST
	// /v1/connect to auth, then the upgrade at the node auth named, with
	// its token (client.Authorize, client.DialNode).
	AuthURL  string `json:"auth_url,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// CAFile holds the roots to trust for https:// and wss://; empty: the
	// system roots.
	CAFile string `json:"ca_file,omitempty"`
	// SourceIPs are bound round-robin from SourceOffset on.
	SourceIPs    []netip.Addr `json:"source_ips"`
	SourceOffset int          `json:"source_offset"`
	// Rate is this worker's connects per second; Concurrency bounds its
	// handshakes in flight.
	Rate        float64 `json:"rate"`
	Concurrency int     `json:"concurrency"`
	// HandshakeTimeout bounds one connect (auth request plus upgrade).
	HandshakeTimeout time.Duration `json:"handshake_timeout"`
}

// ClientStatus answers every command.
type ClientStatus struct {
	// Open is the number of connections held.
	Open int `json:"open"`
	// Failed counts connects that failed since the worker started, and
	// Dropped connections the server closed.
	Failed  int `json:"failed"`
	Dropped int `json:"dropped"`
	// FirstError is the first failure's text.
	FirstError string `json:"first_error,omitempty"`
	// Error is set when the command itself was bad.
	Error string `json:"error,omitempty"`
}

// RunClient is the body of ClientCommand.
func RunClient(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewScanner(stdin)
	if !in.Scan() {
		return errors.New("idle-client: no config on stdin")
	}
	var cfg ClientConfig
	if err := json.Unmarshal(in.Bytes(), &cfg); err != nil {
		return fmt.Errorf("idle-client: config: %w", err)
	}
	w, err := newWorker(cfg)
	if err != nil {
		return err
	}
	defer w.closeAll()
	enc := json.NewEncoder(stdout)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(in.Text()), " ")
		switch cmd {
		case "open":
			n, err := strconv.Atoi(arg)
			if err != nil || n < 0 {
				if err := enc.Encode(ClientStatus{Error: fmt.Sprintf("open %q: want a count", arg)}); err != nil {
					return err
				}
				continue
			}
			w.openUpTo(ctx, n)
		case "close":
			w.closeAll()
		default:
			if err := enc.Encode(ClientStatus{Error: fmt.Sprintf("unknown command %q", cmd)}); err != nil {
				return err
			}
			continue
		}
		if err := enc.Encode(w.status()); err != nil {
			return err
		}
	}
	return nil
}

type worker struct {
	cfg     ClientConfig
	opts    []client.Option
	dialers []*websocket.Dialer
	next    int

	mu       sync.Mutex
	conns    map[*websocket.Conn]struct{}
	failed   int
	firstErr string
	closing  atomic.Bool
	dropped  atomic.Int64
	readers  sync.WaitGroup
}

func newWorker(cfg ClientConfig) (*worker, error) {
	switch {
	case (cfg.URL == "") == (cfg.AuthURL == ""):
		return nil, errors.New("idle-client: set exactly one of URL and AuthURL")
	case len(cfg.SourceIPs) == 0:
		return nil, errors.New("idle-client: SourceIPs is required")
	case !(cfg.Rate > 0):
		return nil, fmt.Errorf("idle-client: Rate must be > 0, got %g", cfg.Rate)
	case cfg.Concurrency < 1:
		return nil, fmt.Errorf("idle-client: Concurrency must be at least 1, got %d", cfg.Concurrency)
	case cfg.HandshakeTimeout <= 0:
		return nil, errors.New("idle-client: HandshakeTimeout must be > 0")
	}
	var tc *tls.Config
	if cfg.CAFile != "" {
		pool, err := client.LoadRootCAs(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		// Every connect a new client: no session cache, a full handshake.
		tc = &tls.Config{RootCAs: pool}
	}
	w := &worker{cfg: cfg, conns: map[*websocket.Conn]struct{}{}}
	// Small client buffers keep the workers' own memory low; the write
	// buffers are pooled, so an idle connection holds none.
	pool := &sync.Pool{}
	for _, ip := range cfg.SourceIPs {
		w.dialers = append(w.dialers, &websocket.Dialer{
			NetDialContext:   srcbind.Dialer(ip.AsSlice(), cfg.HandshakeTimeout).DialContext,
			HandshakeTimeout: cfg.HandshakeTimeout,
			ReadBufferSize:   512,
			WriteBufferSize:  512,
			WriteBufferPool:  pool,
			TLSClientConfig:  tc,
		})
	}
	w.next = cfg.SourceOffset
	if cfg.AuthURL != "" {
		// Keep-alive connections to auth: the figures are the node's, and
		// a fresh TCP (and TLS) handshake with auth for every connect would
		// only load the shared machine.
		tr := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: cfg.HandshakeTimeout}).DialContext,
			MaxIdleConnsPerHost: cfg.Concurrency,
			IdleConnTimeout:     90 * time.Second,
			TLSClientConfig:     tc,
		}
		w.opts = []client.Option{client.WithHTTPClient(&http.Client{Transport: tr, Timeout: cfg.HandshakeTimeout})}
	}
	return w, nil
}

// openUpTo opens connections until n are held (or one attempt per missing
// connection failed), at the configured rate.
func (w *worker) openUpTo(ctx context.Context, n int) {
	w.mu.Lock()
	missing := n - len(w.conns)
	w.mu.Unlock()
	if missing <= 0 {
		return
	}
	// A burst of 20 ms worth keeps the pace even though timers are coarser
	// than the gap between connects.
	lim := rate.NewLimiter(rate.Limit(w.cfg.Rate), max(1, int(w.cfg.Rate/50)))
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := 0; i < missing; i++ {
		if lim.Wait(ctx) != nil {
			break
		}
		sem <- struct{}{}
		d := w.dialers[w.next%len(w.dialers)]
		w.next++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.connectOne(ctx, d)
		}()
	}
	wg.Wait()
}

func (w *worker) connectOne(ctx context.Context, d *websocket.Dialer) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.HandshakeTimeout)
	defer cancel()
	var (
		c   *websocket.Conn
		err error
	)
	if w.cfg.AuthURL != "" {
		opts := append([]client.Option{client.WithDialer(d)}, w.opts...)
		var resp *wire.ConnectResponse
		resp, err = client.Authorize(ctx, w.cfg.AuthURL, client.Credentials{Username: w.cfg.Username, Password: w.cfg.Password}, opts...)
		if err == nil {
			c, err = client.DialNode(ctx, resp, opts...)
		}
	} else {
		c, _, err = d.DialContext(ctx, w.cfg.URL, nil)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.failed == 0 {
			w.firstErr = err.Error()
		}
		w.failed++
		return
	}
	w.conns[c] = struct{}{}
	w.readers.Add(1)
	go w.read(c)
}

// read answers pings (gorilla handles control frames inside a read) and
// notices a connection the server dropped.
func (w *worker) read(c *websocket.Conn) {
	defer w.readers.Done()
	for {
		if _, _, err := c.NextReader(); err != nil {
			break
		}
	}
	w.mu.Lock()
	_, held := w.conns[c]
	delete(w.conns, c)
	w.mu.Unlock()
	if held && !w.closing.Load() {
		w.dropped.Add(1)
	}
	c.Close()
}

func (w *worker) closeAll() {
	w.closing.Store(true)
	w.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(w.conns))
	for c := range w.conns {
		conns = append(conns, c)
	}
	w.conns = map[*websocket.Conn]struct{}{}
	w.mu.Unlock()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, c := range conns {
		_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		c.Close()
	}
	w.readers.Wait()
	w.closing.Store(false)
}

func (w *worker) status() ClientStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return ClientStatus{Open: len(w.conns), Failed: w.failed, Dropped: int(w.dropped.Load()), FirstError: w.firstErr}
}
