package tflocal

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// Clients holds managed connections opened through auth (client.Managed), each with its
// latest assignment. Like any client they go back to auth when a node closes them with a
// reconnect code: a drain, or a rebalance after a scale-out moving them to the new node.
type Clients struct {
	mu     sync.Mutex
	conns  []*conn
	cancel []context.CancelFunc
	wg     sync.WaitGroup
}

type conn struct {
	m    *client.Managed
	msgs chan string
	mu   sync.Mutex
	url  string // of the latest assignment
}

// User is one person the clients log in as, from an address of their own.
type User struct {
	Creds client.Credentials
	// From is the local address the user's connections come from (a loopback address of
	// this machine); the zero Addr lets the kernel choose.
	From netip.Addr
}

// Connect opens n connections through the auth service at authURL, at most concurrency at a
// time: each asks auth for a node, connects straight to it and checks one echo. Client i is
// users[i % len(users)]: many users, each from an address of their own, as in life (auth
// limits each address's concurrent password checks and each user's unused tokens, and each
// node each user's connections). roots are the CAs to trust for https:// and wss://. Every
// connection stays up, reconnecting through auth when told to (and retrying after auth's
// Retry-After), until Close. A client that fails is stopped at once.
func (cs *Clients) Connect(ctx context.Context, authURL string, users []User, roots *x509.CertPool, n, concurrency int) error {
	if len(users) == 0 {
		return errors.New("tflocal: Connect needs at least one user")
	}
	opts := make([][]client.Option, len(users))
	trs := make([]*http.Transport, len(users))
	for i, u := range users {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if u.From.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: u.From.AsSlice()}
		}
		trs[i] = &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}
		opts[i] = []client.Option{
			client.WithHTTPClient(&http.Client{Transport: trs[i], Timeout: 30 * time.Second}),
			client.WithDialer(&websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512,
				TLSClientConfig: &tls.Config{RootCAs: roots}, NetDialContext: d.DialContext}),
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	cs.mu.Lock()
	cs.cancel = append(cs.cancel, func() {
		cancel()
		for _, tr := range trs {
			tr.CloseIdleConnections()
		}
	})
	cs.mu.Unlock()
	sem := make(chan struct{}, concurrency)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u := i % len(users)
			if err := cs.start(ctx, runCtx, authURL, users[u].Creds, opts[u], i); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		return fmt.Errorf("%d of %d connections failed, first: %w", len(all), n, all[0])
	}
	return nil
}

// firstConnectTimeout bounds a client's wait for its first connection. It is long: first
// logins of many users from one address meet auth's per-address limit on bcrypt work (10 at
// once), and a client told to retry backs off exponentially, up to 30 s between attempts.
const firstConnectTimeout = 2 * time.Minute

// start runs one managed client until runCtx ends and waits for its first connection and
// echo, within ctx and firstConnectTimeout; on failure it stops the client.
func (cs *Clients) start(ctx, runCtx context.Context, authURL string, creds client.Credentials, opts []client.Option, i int) (err error) {
	runCtx, stop := context.WithCancel(runCtx)
	defer func() {
		if err != nil {
			stop()
		}
	}()
	c := &conn{msgs: make(chan string, 4)}
	connected := make(chan struct{}, 1)
	cfg := client.DefaultManagedConfig()
	cfg.Options = opts
	cfg.OnConnect = func(resp *wire.ConnectResponse) {
		c.mu.Lock()
		c.url = resp.URL
		c.mu.Unlock()
		select {
		case connected <- struct{}{}:
		default:
		}
	}
	cfg.OnMessage = func(_ int, data []byte) {
		select {
		case c.msgs <- string(data):
		default:
		}
	}
	m, err := client.NewManaged(authURL, creds, cfg)
	if err != nil {
		return err
	}
	c.m = m
	runErr := make(chan error, 1)
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		runErr <- m.Run(runCtx)
	}()
	wait, cancel := context.WithTimeout(ctx, firstConnectTimeout)
	defer cancel()
	select {
	case <-connected:
	case err := <-runErr:
		return err
	case <-wait.Done():
		return fmt.Errorf("not connected: %w", wait.Err())
	}
	msg := "ping " + strconv.Itoa(i)
	if err := m.Send(wait, websocket.TextMessage, []byte(msg)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	select {
	case got := <-c.msgs:
		if got != msg {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
	case <-wait.Done():
		return fmt.Errorf("no echo: %w", wait.Err())
	}
	cs.mu.Lock()
	cs.conns = append(cs.conns, c)
	cs.mu.Unlock()
	return nil
}

// Len is the number of clients.
func (cs *Clients) Len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.conns)
}

// ByNode counts the clients connected right now by node, and records each node's URL.
func (cs *Clients) ByNode() (counts map[string]int, urls map[string]string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	counts, urls = map[string]int{}, map[string]string{}
	for _, c := range cs.conns {
		node, ok := c.m.Current()
		if !ok {
			continue
		}
		counts[node]++
		c.mu.Lock()
		urls[node] = c.url
		c.mu.Unlock()
	}
	return counts, urls
}

// Close closes every connection (with 1000) and waits for the clients to stop.
func (cs *Clients) Close() {
	cs.mu.Lock()
	cancels := cs.cancel
	cs.cancel, cs.conns = nil, nil
	cs.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
	cs.wg.Wait()
}

// NodeConnections reads a node's own count of live WebSockets (wsdirect_node_connections)
// from its metrics endpoint at addr (host:port, its private address), over https with its
// certificate for serverName (its public address), trusting roots.
func NodeConnections(ctx context.Context, addr, serverName string, roots *x509.CertPool) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "wsdirect_node_connections "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no wsdirect_node_connections in the node's metrics")
}

// hostOf returns the host of a ws:// or wss:// URL.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
