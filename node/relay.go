package node

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

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
	return up, nil
}

// serveRelay copies frames both ways between the client and its upstream
// connection, keeping message types. This goroutine reads the client and
// is the upstream's only data writer; a second goroutine reads the upstream
// and is the client's only data writer. When one side closes, the other is
// closed with the same code and reason; an upstream that vanishes without a
// close frame closes the client with wire.CloseUpstreamUnavailable.
func (c *conn) serveRelay(up *websocket.Conn) {
	defer c.finish()
	upDone := make(chan struct{})
	go c.pumpUpstream(up, upDone)

	var readErr error
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil {
			readErr = err
			break
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(c.n.conf.PongWait))
		if err := c.copyMessage(up, mt, r); err != nil {
			// A fragmented client message can cross the read limit
			// mid-copy; gorilla has already sent 1009 then. Otherwise the
			// upstream broke mid-write, and its reader will see it too.
			if !errors.Is(err, websocket.ErrReadLimit) {
				c.closeWith(wire.CloseUpstreamUnavailable, closeText(wire.CloseUpstreamUnavailable))
			}
			readErr = err
			break
		}
	}
	c.logReadEnd(readErr)

	// The client is gone or has closed: stop pumpUpstream from writing to
	// it, then pass the close on.
	c.closing.Store(true)
	code, text := websocket.CloseGoingAway, "client gone"
	var ce *websocket.CloseError
	switch {
	case errors.As(readErr, &ce):
		code, text = ce.Code, ce.Text
	case errors.Is(readErr, websocket.ErrReadLimit):
		code, text = websocket.CloseMessageTooBig, "client message too big"
	}
	msg := websocket.FormatCloseMessage(code, text)
	if err := up.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.n.conf.WriteWait)); err == nil {
		// Give the upstream a moment to answer, completing its handshake.
		select {
		case <-upDone:
		case <-time.After(c.n.conf.CloseGrace):
		}
	}
	_ = up.Close()
	<-upDone
	c.linger(readErr)
}

// pumpUpstream copies upstream messages to the client until the upstream
// closes or fails, then closes the client to match.
func (c *conn) pumpUpstream(up *websocket.Conn, done chan<- struct{}) {
	defer close(done)
	for {
		mt, r, err := up.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
				c.closeWith(ce.Code, ce.Text)
			} else {
				c.closeWith(wire.CloseUpstreamUnavailable, closeText(wire.CloseUpstreamUnavailable))
			}
			return
		}
		if c.closing.Load() {
			continue // the client is closing: drain and drop
		}
		if err := c.copyMessage(c.ws, mt, r); err != nil {
			// The client write failed; its reader ends the relay.
			continue
		}
	}
}
