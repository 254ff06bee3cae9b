package node

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/wsframe"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// dialUpstream opens the upstream connection for one client, carrying the
// authenticated user in wire.UserHeader. The client's token and
// subprotocols are not forwarded.
func (n *Node) dialUpstream(r *http.Request, user string) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set(wire.UserHeader, user)
	h.Set("X-Forwarded-For", clientIP(r))
	ctx, cancel := context.WithTimeout(r.Context(), n.conf.HandshakeTimeout)
	defer cancel()
	up, _, err := n.dialer.DialContext(ctx, n.conf.Upstream, h)
	if err != nil {
		return nil, err
	}
	up.NetConn().(*wsframe.Conn).Upgraded()
	return up, nil
}

// newDialer returns the upstream dialer. Its connections are read through
// wsframe, like the clients', so an idle upstream costs no goroutine
// either; for wss:// it does the TLS handshake itself (gorilla would put
// TLS above wsframe, hiding the frames).
func newDialer(c *Config, pool websocket.BufferPool) *websocket.Dialer {
	var nd net.Dialer
	return &websocket.Dialer{
		HandshakeTimeout: c.HandshakeTimeout,
		ReadBufferSize:   c.ReadBufferSize,
		WriteBufferSize:  c.WriteBufferSize,
		WriteBufferPool:  pool,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return wsframe.Client(nc, nil), nil
		},
		NetDialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			nc, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(nc, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
			if err := tc.HandshakeContext(ctx); err != nil {
				nc.Close()
				return nil, err
			}
			return wsframe.Client(tc, nil), nil
		},
	}
}

// upstream is a relay's upstream side. Its reader is the client's only
// data writer; the client's reader is the upstream's only data writer.
// When one side closes, the other is closed with the same code and reason;
// an upstream that vanishes without a close frame closes the client with
// wire.CloseUpstreamUnavailable.
type upstream struct {
	c    *conn
	leg  leg
	done chan struct{} // closed when the upstream's reading has ended
	// writeBy is the lazy write deadline of data writes to the upstream.
	writeBy int64
}

// Ping answers the upstream's ping (wsframe.Handler).
func (u *upstream) Ping(payload []byte) error {
	return answerPing(u.leg.ws, payload, u.c.n.conf.WriteWait)
}

// Pong ignores an upstream's pong: the node does not ping upstreams.
func (u *upstream) Pong([]byte) error { return nil }

// message copies one upstream message to the client.
func (u *upstream) message(mt int, r io.Reader) error {
	if u.c.closing.Load() {
		return nil // the client is closing: drain and drop
	}
	// A failed client write ends the relay through the client's reader.
	_ = u.c.copyMessage(u.c.leg.ws, &u.c.writeBy, mt, r)
	return nil
}

// end closes the client to match the upstream's end.
func (u *upstream) end(err error) {
	defer close(u.done)
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		u.c.closeWith(ce.Code, ce.Text)
		return
	}
	u.c.closeWith(wire.CloseUpstreamUnavailable, closeText(wire.CloseUpstreamUnavailable))
}

// endRelay passes the client's end on to the upstream: the client is gone
// or has closed, so the upstream reader stops writing to it, and the
// upstream gets the client's close code.
func (c *conn) endRelay(readErr error) {
	c.closing.Store(true)
	u := c.up
	code, text := websocket.CloseGoingAway, "client gone"
	var ce *websocket.CloseError
	switch {
	case errors.As(readErr, &ce):
		code, text = ce.Code, ce.Text
	case errors.Is(readErr, websocket.ErrReadLimit):
		code, text = websocket.CloseMessageTooBig, "client message too big"
	}
	msg := websocket.FormatCloseMessage(code, text)
	if err := u.leg.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.n.conf.WriteWait)); err == nil {
		// Give the upstream a moment to answer, completing its handshake.
		select {
		case <-u.done:
		case <-time.After(c.n.conf.CloseGrace):
		}
	}
	u.leg.shutdown()
	<-u.done
}
