package loadtest

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
)

// Config describes one load run. Start from DefaultConfig; Run rejects
// invalid fields. It is also what a parent process sends to its worker
// processes, as JSON on their stdin, so every field is exported and
// serializable (the password never appears on a command line).
type Config struct {
	// AuthURL is the auth service, e.g. "http://127.0.0.1:8443". Required.
	AuthURL string `json:"auth_url"`
	// Credentials for every connection.
	Username    string `json:"username,omitempty"`
	Password    string `json:"password,omitempty"`
	BearerToken string `json:"bearer_token,omitempty"`

	// Conns is how many connections to open. Required (> 0).
	Conns int `json:"conns"`
	// Rate is the target connect rate in connections per second; 0 means
	// as fast as Concurrency allows.
	Rate float64 `json:"rate"`
	// Concurrency bounds handshakes in flight; at least 1.
	Concurrency int `json:"concurrency,omitempty"`
	// SourceIPs are local addresses bound round-robin, one per connection;
	// empty lets the kernel pick.
	SourceIPs []netip.Addr `json:"source_ips,omitempty"`
	// SourceOffset starts the round-robin at this index (workers use it so
	// their first connections do not all take the same address).
	SourceOffset int `json:"source_offset,omitempty"`

	// MsgRate is messages per second per connection; 0 keeps connections
	// idle. Messages go to the node's application (echo by default) and the
	// round trip is measured.
	MsgRate float64 `json:"msg_rate,omitempty"`
	// MsgSize is the message size in bytes, at least 8 (it carries a
	// timestamp).
	MsgSize int `json:"msg_size,omitempty"`
	// Duration is how long to send messages once every connection is open;
	// required (> 0) when MsgRate is set.
	Duration time.Duration `json:"duration,omitempty"`
	// Hold keeps connections open this long after the connect phase (at
	// least Duration when messaging); 0 closes them at once.
	Hold time.Duration `json:"hold,omitempty"`

	// HandshakeTimeout bounds auth request plus upgrade. Must be > 0.
	HandshakeTimeout time.Duration `json:"handshake_timeout,omitempty"`
	// TokenInSubprotocol sends the token in Sec-WebSocket-Protocol.
	TokenInSubprotocol bool `json:"token_in_subprotocol,omitempty"`
	// BufferSize is the client read and write buffer size. Must be > 0.
	BufferSize int `json:"buffer_size,omitempty"`

	// CAFile is a PEM file or bundle of roots to trust for https:// auth
	// and wss:// nodes; empty means the system roots.
	CAFile string `json:"ca_file,omitempty"`
	// TLSResume keeps TLS sessions in one cache for the whole process (per
	// server address, as returning clients hold them) and resumes them;
	// false makes every handshake a full one.
	TLSResume bool `json:"tls_resume,omitempty"`
	// FreshAuthConns gives every connect its own connection to auth, as
	// distinct clients have (a TCP and, over https, a TLS handshake each);
	// false reuses kept-alive connections across connects.
	FreshAuthConns bool `json:"fresh_auth_conns,omitempty"`
	// ClassicKeyExchange offers only classical key shares (X25519, P-256),
	// as older clients do; false offers Go's default, the post-quantum
	// X25519MLKEM768 first, as current browsers do.
	ClassicKeyExchange bool `json:"classic_key_exchange,omitempty"`
}

// DefaultConfig returns the defaults; the caller sets AuthURL, the
// credentials and Conns.
func DefaultConfig() Config {
	return Config{
		// 256 handshakes in flight keep a local cluster busy and bound the
		// sockets a run holds half-open.
		Concurrency: 256,
		// 64 bytes: a chat-sized message.
		MsgSize: 64,
		// Generous on a loaded machine: a handshake slower than this
		// counts as a timeout.
		HandshakeTimeout: 10 * time.Second,
		// 1 KiB: small buffers keep the client's own memory per connection
		// low.
		BufferSize: 1024,
	}
}

// validate reports the first problem with c.
func (c *Config) validate() error {
	switch {
	case c.AuthURL == "":
		return errors.New("loadtest: AuthURL is required")
	case c.Conns <= 0:
		return fmt.Errorf("loadtest: Conns must be > 0, got %d", c.Conns)
	case c.Rate < 0:
		return fmt.Errorf("loadtest: Rate must not be negative, got %g", c.Rate)
	case c.Concurrency < 1:
		return fmt.Errorf("loadtest: Concurrency must be at least 1, got %d", c.Concurrency)
	case c.SourceOffset < 0:
		return fmt.Errorf("loadtest: SourceOffset must not be negative, got %d", c.SourceOffset)
	case c.MsgRate < 0:
		return fmt.Errorf("loadtest: MsgRate must not be negative, got %g", c.MsgRate)
	case c.MsgSize < 8:
		return fmt.Errorf("loadtest: MsgSize must be at least 8 bytes (it carries a timestamp), got %d", c.MsgSize)
	case c.Duration < 0 || (c.MsgRate > 0 && c.Duration == 0):
		return fmt.Errorf("loadtest: Duration must be > 0 with a MsgRate (and never negative), got %s", c.Duration)
	case c.Hold < 0:
		return fmt.Errorf("loadtest: Hold must not be negative, got %s", c.Hold)
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("loadtest: HandshakeTimeout must be > 0, got %s", c.HandshakeTimeout)
	case c.BufferSize <= 0:
		return fmt.Errorf("loadtest: BufferSize must be > 0, got %d", c.BufferSize)
	}
	return nil
}

// Credentials returns the client credentials of c.
func (c *Config) Credentials() client.Credentials {
	return client.Credentials{Username: c.Username, Password: c.Password, BearerToken: c.BearerToken}
}

// Run executes cfg in this process and returns its report. Progress lines go
// to progress (may be nil).
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	r := &run{cfg: cfg, rep: NewReport()}
	r.rep.Target = cfg.Conns
	r.rep.Workers = 1
	if err := r.setup(); err != nil {
		return nil, err
	}
	defer r.httpTransport.CloseIdleConnections()

	r.connectPhase(ctx, progress)
	if rss, err := localcluster.ProcRSS(0); err == nil {
		r.rep.ClientRSSBytes = rss
	}
	fmt.Fprintf(progress, "connected %d/%d in %v\n", r.rep.Connected, cfg.Conns, r.rep.ConnectEnd.Sub(r.rep.ConnectStart).Round(time.Millisecond))

	hold := cfg.Hold
	if cfg.MsgRate > 0 && cfg.Duration > hold {
		hold = cfg.Duration
	}
	if cfg.MsgRate > 0 && len(r.conns) > 0 {
		r.messagePhase(ctx, cfg.Duration)
	}
	if rest := time.Until(r.rep.ConnectEnd.Add(hold)); rest > 0 {
		select {
		case <-time.After(rest):
		case <-ctx.Done():
		}
	}
	r.closeAll()
	r.rep.Dropped = int(r.dropped.Load())
	return r.rep, ctx.Err()
}

type run struct {
	cfg           Config
	rep           *Report
	httpClient    *http.Client
	httpTransport *http.Transport
	dialers       []*websocket.Dialer

	mu    sync.Mutex // guards rep (histograms and maps) and conns
	conns []*websocket.Conn

	closing atomic.Bool
	dropped atomic.Int64
	readers sync.WaitGroup
	sent    atomic.Int64
	recv    atomic.Int64
}

func (r *run) setup() error {
	var tc *tls.Config
	if r.cfg.CAFile != "" {
		pool, err := client.LoadRootCAs(r.cfg.CAFile)
		if err != nil {
			return err
		}
		tc = &tls.Config{RootCAs: pool}
	}
	if r.cfg.TLSResume || r.cfg.ClassicKeyExchange {
		if tc == nil {
			tc = &tls.Config{}
		}
	}
	if r.cfg.TLSResume {
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(4096)
	}
	if r.cfg.ClassicKeyExchange {
		tc.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	}
	// One keep-alive pool for auth, unless every connect is to look like a
	// new client: a fresh TCP connection per auth request costs a handshake
	// each and fills TIME_WAIT.
	r.httpTransport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: r.cfg.HandshakeTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        r.cfg.Concurrency,
		MaxIdleConnsPerHost: r.cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		DisableKeepAlives:   r.cfg.FreshAuthConns,
		TLSClientConfig:     tc,
	}
	r.httpClient = &http.Client{Transport: r.httpTransport, Timeout: r.cfg.HandshakeTimeout}
	pool := &sync.Pool{} // shared write buffers: idle connections hold none
	mk := func(dial func(context.Context, string, string) (net.Conn, error)) *websocket.Dialer {
		return &websocket.Dialer{
			NetDialContext:   dial,
			HandshakeTimeout: r.cfg.HandshakeTimeout,
			ReadBufferSize:   r.cfg.BufferSize,
			WriteBufferSize:  r.cfg.BufferSize,
			WriteBufferPool:  pool,
			TLSClientConfig:  tc,
		}
	}
	if len(r.cfg.SourceIPs) == 0 {
		r.dialers = []*websocket.Dialer{mk((&net.Dialer{}).DialContext)}
		return nil
	}
	for _, ip := range r.cfg.SourceIPs {
		r.dialers = append(r.dialers, mk(dialFrom(ip)))
	}
	return nil
}

func (r *run) connectPhase(ctx context.Context, progress io.Writer) {
	var lim *rate.Limiter
	if r.cfg.Rate > 0 {
		// A burst of 20 ms worth keeps the pace even though timers are
		// coarser than the gap between connections at thousands per second.
		burst := int(r.cfg.Rate / 50)
		if burst < 1 {
			burst = 1
		}
		lim = rate.NewLimiter(rate.Limit(r.cfg.Rate), burst)
	}
	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	r.rep.ConnectStart = time.Now()
	lastReport := time.Now()
	for i := 0; i < r.cfg.Conns; i++ {
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				r.rep.addError("canceled", r.cfg.Conns-i)
				break
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			r.rep.addError("canceled", r.cfg.Conns-i)
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		d := r.dialers[(i+r.cfg.SourceOffset)%len(r.dialers)]
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.connectOne(ctx, d)
		}()
		if time.Since(lastReport) > 5*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(progress, "  %d/%d started\n", i+1, r.cfg.Conns)
		}
	}
	wg.Wait()
	r.rep.ConnectEnd = time.Now()
	if el := r.rep.ConnectEnd.Sub(r.rep.ConnectStart).Seconds(); el > 0 {
		r.rep.ConnectRate = float64(r.rep.Connected) / el
	}
}

func (r *run) connectOne(ctx context.Context, d *websocket.Dialer) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.HandshakeTimeout)
	defer cancel()
	opts := []client.Option{client.WithHTTPClient(r.httpClient), client.WithDialer(d)}
	if r.cfg.TokenInSubprotocol {
		opts = append(opts, client.WithTokenInSubprotocol())
	}
	start := time.Now()
	resp, err := client.Authorize(ctx, r.cfg.AuthURL, r.cfg.Credentials(), opts...)
	authDone := time.Now()
	if err != nil {
		r.mu.Lock()
		r.rep.addErrorSample(ErrorKind(err), err)
		r.mu.Unlock()
		return
	}
	conn, err := client.DialNode(ctx, resp, opts...)
	done := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.rep.addErrorSample(ErrorKind(err), err)
		return
	}
	r.rep.Auth.Record(authDone.Sub(start))
	r.rep.Upgrade.Record(done.Sub(authDone))
	r.rep.Handshake.Record(done.Sub(start))
	r.rep.Nodes[resp.NodeID]++
	r.rep.Connected++
	if tc, ok := conn.NetConn().(*tls.Conn); ok && tc.ConnectionState().DidResume {
		r.rep.NodeTLSResumed++
	}
	r.conns = append(r.conns, conn)
	r.readers.Add(1)
	go r.read(conn)
}

// read is the one goroutine per connection: it answers the node's pings
// (gorilla handles control frames only inside a read), notices a dropped
// connection, and times echoed messages.
func (r *run) read(conn *websocket.Conn) {
	defer r.readers.Done()
	var buf [8]byte
	for {
		_, rd, err := conn.NextReader()
		if err != nil {
			if !r.closing.Load() {
				r.dropped.Add(1)
				var ce *websocket.CloseError
				kind := "dropped_1006"
				if errors.As(err, &ce) {
					kind = fmt.Sprintf("dropped_%d", ce.Code)
				}
				r.mu.Lock()
				r.rep.addError(kind, 1)
				r.mu.Unlock()
			}
			return
		}
		n, _ := io.ReadFull(rd, buf[:])
		_, _ = io.Copy(io.Discard, rd)
		if n == 8 {
			sentAt := int64(binary.BigEndian.Uint64(buf[:]))
			rtt := time.Duration(time.Now().UnixNano() - sentAt)
			r.recv.Add(1)
			r.mu.Lock()
			r.rep.RTT.Record(rtt)
			r.mu.Unlock()
		}
	}
}

// messagePhase sends MsgRate messages per second on every connection for d,
// from a few sender goroutines that each pace a share of the connections
// (rather than a goroutine per connection). Each message carries its send
// time, which the echo brings back.
func (r *run) messagePhase(ctx context.Context, d time.Duration) {
	r.mu.Lock()
	conns := append([]*websocket.Conn(nil), r.conns...)
	r.mu.Unlock()
	senders := 16
	if senders > len(conns) {
		senders = len(conns)
	}
	period := time.Duration(float64(time.Second) / r.cfg.MsgRate)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		var mine []*websocket.Conn
		for i := s; i < len(conns); i += senders {
			mine = append(mine, conns[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, r.cfg.MsgSize)
			for round := 0; ; round++ {
				roundStart := start.Add(time.Duration(round) * period)
				for j, c := range mine {
					at := roundStart.Add(period * time.Duration(j) / time.Duration(len(mine)))
					if wait := time.Until(at); wait > 0 {
						select {
						case <-time.After(wait):
						case <-ctx.Done():
							return
						}
					}
					if ctx.Err() != nil {
						return
					}
					binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
					_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if err := c.WriteMessage(websocket.BinaryMessage, payload); err == nil {
						r.sent.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	// Let the last echoes arrive.
	time.Sleep(200 * time.Millisecond)
	r.mu.Lock()
	r.rep.MsgsSent = r.sent.Load()
	r.rep.MsgsReceived = r.recv.Load()
	r.rep.MessageSeconds = time.Since(start).Seconds()
	r.mu.Unlock()
}

func (r *run) closeAll() {
	r.closing.Store(true)
	r.mu.Lock()
	conns := r.conns
	r.conns = nil
	r.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, c := range conns {
		_ = c.WriteControl(websocket.CloseMessage, msg, deadline)
		_ = c.Close()
	}
	r.readers.Wait()
}
