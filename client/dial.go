package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// Credentials are what the client presents to the auth service. Username and
// Password go in the JSON body; BearerToken, when set, goes in the
// Authorization header (for the JWKS and callback backends).
type Credentials struct {
	Username    string
	Password    string
	BearerToken string
}

// maxAuthBody bounds how much of an auth answer the client reads; a real one
// is well under 1 KiB.
const maxAuthBody = 64 << 10

// Option changes how Dial, Authorize and DialNode talk to the servers.
type Option func(*options)

type options struct {
	httpClient    *http.Client
	dialer        *websocket.Dialer
	tokenProtocol bool
	header        http.Header
	reason        string
	now           func() time.Time
	tlsConfig     *tls.Config
	tlsHTTPClient *http.Client
}

func buildOptions(opts []Option) *options {
	o := &options{
		httpClient: http.DefaultClient,
		dialer:     websocket.DefaultDialer,
		now:        time.Now,
	}
	for _, opt := range opts {
		opt(o)
	}
	if o.tlsConfig != nil {
		if o.httpClient == http.DefaultClient {
			o.httpClient = o.tlsHTTPClient
		}
		if o.dialer.TLSClientConfig == nil {
			d := *o.dialer
			d.TLSClientConfig = o.tlsConfig
			o.dialer = &d
		}
	}
	return o
}

// WithTLSConfig makes the auth request (https://) and the WebSocket
// (wss://) with c, e.g. to trust a private CA (see LoadRootCAs). It applies
// to the default HTTP client and to a dialer without a TLSClientConfig of
// its own; an HTTP client given with WithHTTPClient is used as it is.
func WithTLSConfig(c *tls.Config) Option {
	if c == nil {
		return func(*options) {}
	}
	c = c.Clone()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = c
	hc := &http.Client{Transport: tr}
	return func(o *options) { o.tlsConfig, o.tlsHTTPClient = c, hc }
}

// WithRootCAs trusts the certificates in pool, and only those, for the auth
// request and the WebSocket: WithTLSConfig(&tls.Config{RootCAs: pool}).
func WithRootCAs(pool *x509.CertPool) Option {
	return WithTLSConfig(&tls.Config{RootCAs: pool})
}

// LoadRootCAs reads a PEM file holding one CA certificate or a bundle of
// them. It errors when the file holds none.
func LoadRootCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wsdirect: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("wsdirect: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// WithHTTPClient makes the auth request with c instead of
// http.DefaultClient. Load generators want one with a large idle pool.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.httpClient = c
		}
	}
}

// WithDialer opens the WebSocket with d instead of websocket.DefaultDialer,
// e.g. one whose NetDialContext binds a chosen source IP, or with small
// buffers.
func WithDialer(d *websocket.Dialer) Option {
	return func(o *options) {
		if d != nil {
			o.dialer = d
		}
	}
}

// WithTokenInSubprotocol sends the token as a Sec-WebSocket-Protocol entry
// ("wsdirect.token.<jwt>") instead of the ?token= query parameter, so it
// stays out of URLs that proxies and servers might log.
func WithTokenInSubprotocol() Option {
	return func(o *options) { o.tokenProtocol = true }
}

// WithHeader adds h to the WebSocket upgrade request (not to the auth
// request).
func WithHeader(h http.Header) Option {
	return func(o *options) { o.header = h.Clone() }
}

// WithConnectReason sends reason in the connect request
// (wire.ConnectRequest.Reason), e.g. wire.ReasonRebalance after the node
// closed the previous connection with wire.CloseRebalance. Managed does
// this by itself.
func WithConnectReason(reason string) Option {
	return func(o *options) { o.reason = reason }
}

// Dial asks the auth service at authURL (e.g. "http://127.0.0.1:8443") for a
// node, then opens the WebSocket to it. The returned ConnectResponse says
// which node serves the connection. Errors are *AuthError when auth refused,
// *NodeError when the node refused the upgrade, or transport errors.
func Dial(ctx context.Context, authURL string, creds Credentials, opts ...Option) (*websocket.Conn, *wire.ConnectResponse, error) {
	resp, err := Authorize(ctx, authURL, creds, opts...)
	if err != nil {
		return nil, nil, err
	}
	conn, err := DialNode(ctx, resp, opts...)
	if err != nil {
		return nil, resp, err
	}
	return conn, resp, nil
}

// Authorize performs the first step of Dial alone: POST /v1/connect.
func Authorize(ctx context.Context, authURL string, creds Credentials, opts ...Option) (*wire.ConnectResponse, error) {
	o := buildOptions(opts)
	endpoint, err := connectEndpoint(authURL)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(wire.ConnectRequest{Username: creds.Username, Password: creds.Password, Reason: o.reason})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if creds.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+creds.BearerToken)
	}
	res, err := o.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("wsdirect auth: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAuthBody))
	if err != nil {
		return nil, fmt.Errorf("wsdirect auth: read answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		ae := &AuthError{Status: res.StatusCode, RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), o.now())}
		decodeError(data, &ae.Code, &ae.Message, res.Status)
		return nil, ae
	}
	var cr wire.ConnectResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		return nil, fmt.Errorf("wsdirect auth: decode answer: %w", err)
	}
	if cr.URL == "" || cr.Token == "" {
		return nil, errors.New("wsdirect auth: answer has no url or token")
	}
	return &cr, nil
}

// DialNode performs the second step of Dial alone: it opens the WebSocket to
// the node named in resp and presents resp.Token. A token is single use, so
// a resp must not be dialed twice.
func DialNode(ctx context.Context, resp *wire.ConnectResponse, opts ...Option) (*websocket.Conn, error) {
	o := buildOptions(opts)
	u, err := url.Parse(resp.URL)
	if err != nil {
		return nil, fmt.Errorf("wsdirect: node url %q: %w", resp.URL, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("wsdirect: node url %q: scheme must be ws or wss", resp.URL)
	}
	header := http.Header{}
	for k, v := range o.header {
		header[k] = v
	}
	protocols := []string{wire.Subprotocol}
	if o.tokenProtocol {
		protocols = append(protocols, wire.SubprotocolTokenPrefix+resp.Token)
	} else {
		q := u.Query()
		q.Set(wire.TokenQueryParam, resp.Token)
		u.RawQuery = q.Encode()
	}
	header["Sec-WebSocket-Protocol"] = []string{strings.Join(protocols, ", ")}
	conn, res, err := o.dialer.DialContext(ctx, u.String(), header)
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			// gorilla keeps up to 1 KiB of the refused answer's body.
			data, _ := io.ReadAll(io.LimitReader(res.Body, maxAuthBody))
			res.Body.Close()
			ne := &NodeError{Status: res.StatusCode, RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), o.now())}
			decodeError(data, &ne.Code, &ne.Message, res.Status)
			return nil, ne
		}
		// Never echo the URL: it carries the token.
		return nil, fmt.Errorf("wsdirect: dial node %s: %w", resp.NodeID, stripURL(err))
	}
	conn.SetPingHandler(pongHandler(conn))
	return conn, nil
}

// PongWriteWait bounds the pong a connection sends for each node ping.
// gorilla's default handler allows 1 s, and a write that misses its deadline
// breaks the connection for good, so a client descheduled for a second
// (a busy phone, a starved load generator) lost every later pong and was
// dropped by the node's pong deadline. The node waits PongWait (75 s by
// default) anyway, so a longer bound costs nothing.
const PongWriteWait = 10 * time.Second

func pongHandler(conn *websocket.Conn) func(string) error {
	return func(data string) error {
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(PongWriteWait))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil // as gorilla's default: not a read error
		}
		return err
	}
}

func connectEndpoint(authURL string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("wsdirect: auth url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("wsdirect: auth url %q: scheme must be http or https", authURL)
	}
	if u.Host == "" {
		return "", fmt.Errorf("wsdirect: auth url %q has no host", authURL)
	}
	return strings.TrimSuffix(u.String(), "/") + wire.ConnectPath, nil
}

// decodeError fills code and message from a wire.Error body, or from the
// status line when the body is not one (e.g. a proxy's HTML page).
func decodeError(data []byte, code, message *string, status string) {
	var we wire.Error
	if err := json.Unmarshal(data, &we); err == nil && we.Code != "" {
		*code, *message = we.Code, we.Message
		return
	}
	*message = status
}

// stripURL drops a *url.Error's URL (which would leak the token) and keeps
// the operation and cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
