package portceiling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/srcbind"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// ClientEnv, when set in a process's environment, holds a JSON ClientSpec:
// the process is to run ClientMain instead of its usual work.
const ClientEnv = "WSDIRECT_PORTCEILING_CLIENT"

// ClientSpec tells the client process what to connect to and how.
type ClientSpec struct {
	// Target is the host:port the clients dial: HAProxy's frontend or the
	// node itself.
	Target string
	// Sources are the local IPs connections are made from, in turn. Each
	// bound source IP has the whole ephemeral port range to itself, so
	// enough of them keep the client side from being the limit.
	Sources []string
	// Attempts is how many connections to try at most.
	Attempts int
	// StopAfterFailures ends the run after this many failures in a row
	// (the ceiling has been hit); 0 never stops early.
	StopAfterFailures int
	// Workers is how many handshakes run at once.
	Workers int
	// KeyFile is the PEM private key tokens are minted with.
	KeyFile string
	// Node is the node name tokens are minted for.
	Node string
	// Timeout bounds the whole run, including waiting for Target.
	Timeout time.Duration
}

// Failure classes in ClientResult.Failures.
const (
	// FailHTTPPrefix + status: the upgrade was answered with that HTTP
	// status (HAProxy says 503 when it cannot reach a server).
	FailHTTPPrefix = "http-"
	// FailClosed: the connection was closed or reset during the
	// handshake (HAProxy in TCP mode closes when it cannot reach a server).
	FailClosed = "closed"
	// FailClientPorts: the client itself ran out of ports or addresses.
	// The experiment is set up so this never happens; when it does, the
	// count measures the client, not the proxy.
	FailClientPorts = "client-ports"
	// FailTimeout: no answer in time.
	FailTimeout = "timeout"
	// FailEcho: the WebSocket opened but the first echo did not come back.
	FailEcho = "echo"
	// FailOther is anything else; ClientResult.Samples shows examples.
	FailOther = "other"
)

// ClientResult is what the client process reports on stdout, as JSON.
type ClientResult struct {
	// Attempts is how many connections were tried.
	Attempts int
	// Connected is how many opened and echoed a first message.
	Connected int
	// Alive is how many of those still echoed a message once every
	// attempt was done, while all of them were held open at once.
	Alive int
	// Failures counts failed attempts by class (Fail* constants).
	Failures map[string]int
	// Samples holds the first few distinct failure messages.
	Samples []string
	// StoppedEarly is true when StopAfterFailures ended the run.
	StoppedEarly bool
	// Elapsed is the time spent connecting, from the first attempt.
	Elapsed time.Duration
}

// ClientMain is the body of the client process: spec is the value of
// ClientEnv (a JSON ClientSpec); it runs the client and writes the
// ClientResult as JSON to stdout. A main (the tests use TestMain) calls it
// when ClientEnv is set, and exits non-zero when it returns an error.
func ClientMain(ctx context.Context, spec string, stdout io.Writer) error {
	var s ClientSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return fmt.Errorf("portceiling client: bad %s: %w", ClientEnv, err)
	}
	res, err := RunClient(ctx, s)
	if err != nil {
		return fmt.Errorf("portceiling client: %w", err)
	}
	return json.NewEncoder(stdout).Encode(res)
}

func (s ClientSpec) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(s.Target); err != nil {
		errs = append(errs, fmt.Errorf("target %q: %v", s.Target, err))
	}
	if len(s.Sources) == 0 {
		errs = append(errs, errors.New("at least one source IP is required"))
	}
	for _, src := range s.Sources {
		if net.ParseIP(src) == nil {
			errs = append(errs, fmt.Errorf("source %q is not an IP address", src))
		}
	}
	if s.Attempts < 1 || s.Workers < 1 || s.StopAfterFailures < 0 || s.Timeout <= 0 {
		errs = append(errs, errors.New("attempts, workers and timeout must be positive, stop-after-failures not negative"))
	}
	if s.KeyFile == "" || s.Node == "" {
		errs = append(errs, errors.New("key file and node name are required"))
	}
	return errors.Join(errs...)
}

// RunClient waits for spec.Target to answer /healthz, then opens up to
// spec.Attempts WebSocket connections and holds every one that opens until
// all attempts are done, checks which are still alive, and closes them.
func RunClient(ctx context.Context, spec ClientSpec) (ClientResult, error) {
	if err := spec.validate(); err != nil {
		return ClientResult{}, err
	}
	priv, err := token.LoadPrivateKey(spec.KeyFile)
	if err != nil {
		return ClientResult{}, err
	}
	signer := token.NewSigner(priv)
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	if err := waitHealthy(ctx, spec.Target, spec.Timeout); err != nil {
		return ClientResult{}, err
	}

	h := &holder{spec: spec, signer: signer, failures: map[string]int{}}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range spec.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && !h.stop.Load() {
				i := int(next.Add(1)) - 1
				if i >= spec.Attempts {
					return
				}
				h.attempt(ctx, i)
			}
		}()
	}
	wg.Wait()
	res := ClientResult{Elapsed: time.Since(start)}
	alive := h.checkAlive(ctx)
	h.closeAll()

	h.mu.Lock()
	defer h.mu.Unlock()
	res.Attempts, res.Connected, res.Alive = h.attempts, len(h.conns), alive
	res.Failures, res.Samples, res.StoppedEarly = h.failures, h.samples, h.stop.Load()
	return res, nil
}

// waitHealthy polls http://target/healthz until it answers 200, for at
// most timeout.
func waitHealthy(ctx context.Context, target string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	u := "http://" + target + "/healthz"
	return probe.Poll(ctx, timeout, 100*time.Millisecond, u+" to answer 200", func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return probe.Equal("status", resp.StatusCode, http.StatusOK)
	})
}

type holder struct {
	spec   ClientSpec
	signer *token.Signer

	stop        atomic.Bool
	mu          sync.Mutex
	attempts    int
	consecutive int // failures in a row, in completion order
	conns       []*heldConn
	failures    map[string]int
	samples     []string
}

type heldConn struct {
	ws     *websocket.Conn
	echoed chan struct{} // closed when the alive check's echo arrives
}

const (
	helloMessage = "hello"
	aliveMessage = "alive?"
	maxSamples   = 5
)

// attempt opens connection i and keeps it.
func (h *holder) attempt(ctx context.Context, i int) {
	src := h.spec.Sources[i%len(h.spec.Sources)]
	ws, class, err := h.dial(ctx, src, i)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts++
	if err != nil {
		h.failures[class]++
		h.consecutive++
		if len(h.samples) < maxSamples {
			h.samples = append(h.samples, fmt.Sprintf("%s (from %s): %v", class, src, err))
		}
		if h.spec.StopAfterFailures > 0 && h.consecutive >= h.spec.StopAfterFailures {
			h.stop.Store(true)
		}
		return
	}
	h.consecutive = 0
	c := &heldConn{ws: ws, echoed: make(chan struct{})}
	h.conns = append(h.conns, c)
	go c.read()
}

// dial opens one WebSocket with a fresh token and checks one echo.
func (h *holder) dial(ctx context.Context, src string, i int) (*websocket.Conn, string, error) {
	tok, _, err := h.signer.Mint("ceiling-"+strconv.Itoa(i), h.spec.Node)
	if err != nil {
		return nil, FailOther, err
	}
	nd := srcbind.Dialer(net.ParseIP(src), 10*time.Second)
	d := websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512}
	u := url.URL{Scheme: "ws", Host: h.spec.Target, Path: wire.WSPath, RawQuery: wire.TokenQueryParam + "=" + url.QueryEscape(tok)}
	ws, resp, err := d.DialContext(ctx, u.String(), nil)
	if err != nil {
		if resp != nil {
			return nil, FailHTTPPrefix + strconv.Itoa(resp.StatusCode), err
		}
		return nil, classify(err), err
	}
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(helloMessage)); err != nil {
		ws.Close()
		return nil, FailEcho, err
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != helloMessage {
		ws.Close()
		if err == nil {
			err = fmt.Errorf("echo %q, want %q", msg, helloMessage)
		}
		return nil, FailEcho, err
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws, "", nil
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return FailClientPorts
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return FailClosed
	case errors.As(err, &ne) && ne.Timeout():
		return FailTimeout
	}
	return FailOther
}

// read runs for the life of a held connection; reading also answers the
// node's pings.
func (c *heldConn) read() {
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if string(msg) == aliveMessage {
			close(c.echoed)
		}
	}
}

// checkAlive sends every held connection one message and counts the
// echoes that come back within 20 s.
func (h *holder) checkAlive(ctx context.Context) int {
	h.mu.Lock()
	conns := append([]*heldConn(nil), h.conns...)
	h.mu.Unlock()
	var sent []*heldConn
	for _, c := range conns {
		_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if c.ws.WriteMessage(websocket.TextMessage, []byte(aliveMessage)) == nil {
			sent = append(sent, c)
		}
	}
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	alive := 0
	for _, c := range sent {
		select {
		case <-c.echoed:
			alive++
		case <-deadline.C:
			return alive
		case <-ctx.Done():
			return alive
		}
	}
	return alive
}

func (h *holder) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		_ = c.ws.Close()
	}
}
