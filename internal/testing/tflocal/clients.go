package tflocal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/client"
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

// Connect opens n connections through the auth service at authURL, at most concurrency at a
// time: each asks auth for a node, connects straight to it and checks one echo. Every
// connection keeps reading (answering the node's pings) until Close.
func (cs *Clients) Connect(ctx context.Context, authURL string, creds client.Credentials, n, concurrency int) error {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     30 * time.Second,
	}
	defer tr.CloseIdleConnections()
	opts := []client.Option{
		client.WithHTTPClient(&http.Client{Transport: tr, Timeout: 30 * time.Second}),
		client.WithDialer(&websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512}),
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
			ws, resp, err := client.Dial(ctx, authURL, creds, opts...)
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
// from its metrics endpoint at addr (host:port).
func NodeConnections(ctx context.Context, addr string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
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

// hostOf returns the host of a ws:// URL.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
