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

// Clients holds WebSocket connections opened through auth, each with its assignment.
type Clients struct {
	mu    sync.Mutex
	conns []*conn
}

type conn struct {
	ws     *websocket.Conn
	nodeID string
	url    string
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
// connection keeps reading (answering the node's pings) until Close.
func (cs *Clients) Connect(ctx context.Context, authURL string, users []User, roots *x509.CertPool, n, concurrency int) error {
	if len(users) == 0 {
		return errors.New("tflocal: Connect needs at least one user")
	}
	opts := make([][]client.Option, len(users))
	for i, u := range users {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if u.From.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: u.From.AsSlice()}
		}
		tr := &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}
		defer tr.CloseIdleConnections()
		opts[i] = []client.Option{
			client.WithHTTPClient(&http.Client{Transport: tr, Timeout: 30 * time.Second}),
			client.WithDialer(&websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512,
				TLSClientConfig: &tls.Config{RootCAs: roots}, NetDialContext: d.DialContext}),
		}
	}
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
			ws, resp, err := dialRetrying(ctx, authURL, users[u].Creds, opts[u])
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			msg := []byte("ping " + strconv.Itoa(i))
			_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				ws.Close()
				errs <- fmt.Errorf("client %d: write: %w", i, err)
				return
			}
			if _, got, err := ws.ReadMessage(); err != nil || string(got) != string(msg) {
				ws.Close()
				errs <- fmt.Errorf("client %d: echo %q: %v", i, got, err)
				return
			}
			_ = ws.SetReadDeadline(time.Time{})
			c := &conn{ws: ws, nodeID: resp.NodeID, url: resp.URL}
			cs.mu.Lock()
			cs.conns = append(cs.conns, c)
			cs.mu.Unlock()
			go func() {
				for {
					if _, _, err := ws.NextReader(); err != nil {
						return
					}
				}
			}()
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

// dialRetrying is client.Dial, asked again as a real client does when auth says to come
// back later (429, 503: a user with too many unused tokens, an address with too many
// password checks at once, no node with room), after its Retry-After, at most 5 times.
func dialRetrying(ctx context.Context, authURL string, creds client.Credentials, opts []client.Option) (*websocket.Conn, *wire.ConnectResponse, error) {
	for attempt := 1; ; attempt++ {
		ws, resp, err := client.Dial(ctx, authURL, creds, opts...)
		var ae *client.AuthError
		if err == nil || attempt == 5 || !errors.As(err, &ae) || !ae.Temporary() {
			return ws, resp, err
		}
		wait := ae.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// Len is the number of open connections.
func (cs *Clients) Len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.conns)
}

// ByNode counts connections by the node auth assigned, and records each node's URL.
func (cs *Clients) ByNode() (counts map[string]int, urls map[string]string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	counts, urls = map[string]int{}, map[string]string{}
	for _, c := range cs.conns {
		counts[c.nodeID]++
		urls[c.nodeID] = c.url
	}
	return counts, urls
}

// Close closes every connection.
func (cs *Clients) Close() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.conns {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.ws.Close()
	}
	cs.conns = nil
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
