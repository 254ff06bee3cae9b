// Package wire holds the contract that clients, the auth service and nodes
// share on the wire: the JSON bodies of the auth API, the JSON error body,
// how a connection token travels, and the WebSocket close codes with their
// reconnect semantics. Keeping it in one small package lets the Go client,
// the JS client and both servers agree without importing each other.
package wire

import (
	"strings"
	"time"
)

// ConnectPath is the auth service endpoint a client calls before dialing a node.
const ConnectPath = "/v1/connect"

// NodesPath lists nodes and their counts; it needs the admin token.
const NodesPath = "/v1/nodes"

// WSPath is where a node serves WebSockets.
const WSPath = "/ws"

// TokenQueryParam carries the connection token in the URL, because browsers
// cannot set headers on a WebSocket.
const TokenQueryParam = "token"

// Subprotocol is the protocol a node selects when a client offers it. A client
// that sends its token in Sec-WebSocket-Protocol must also offer this, because
// browsers fail a handshake whose response selects none of the offered
// protocols.
const Subprotocol = "wsdirect"

// SubprotocolTokenPrefix marks the Sec-WebSocket-Protocol entry that carries
// the token: "wsdirect.token.<jwt>". JWT characters are all valid in a
// protocol token.
const SubprotocolTokenPrefix = "wsdirect.token."

// UserHeader carries the authenticated user to an upstream application.
const UserHeader = "X-Wsdirect-User"

// ConnectRequest is the optional JSON body of POST /v1/connect. Backends that
// use a bearer token read the Authorization header instead.
type ConnectRequest struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Reason says why the client connects, when it is not a plain connect:
	// ReasonRebalance after a close with CloseRebalance. Empty otherwise.
	Reason string `json:"reason,omitempty"`
}

// ReasonRebalance is the ConnectRequest.Reason of a client that a node
// closed with CloseRebalance. Auth then picks the least loaded node for it
// and marks its token, so that the node it lands on does not move it again
// (docs/design.md section 15). A client that claims it falsely gains no
// more than that: placement on the least loaded node, and a while without
// being moved.
const ReasonRebalance = "rebalance"

// ConnectResponse is the auth service's answer: where to connect and the
// single-use token to present there.
type ConnectResponse struct {
	URL       string    `json:"url"`
	Token     string    `json:"token"`
	NodeID    string    `json:"node_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NodeStatus is one entry of GET /v1/nodes.
type NodeStatus struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	Connections int    `json:"connections"`
	Pending     int    `json:"pending"`
	Cap         int    `json:"cap"`
	Zone        string `json:"zone,omitempty"`
	Draining    bool   `json:"draining"`
	// Ready is false while the node cannot serve (no TLS certificate
	// yet, or it started moments ago and still refuses new tokens); such a
	// node is not assigned.
	Ready     bool      `json:"ready"`
	Alive     bool      `json:"alive"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Error is the JSON body of every non-2xx answer from auth and node.
type Error struct {
	// Code is a stable machine-readable reason, e.g. "expired", "node_full".
	Code string `json:"error"`
	// Message is for humans.
	Message string `json:"message,omitempty"`
}

// TokenFromProtocols returns the token carried in a Sec-WebSocket-Protocol
// list, or "" when there is none.
func TokenFromProtocols(protocols []string) string {
	for _, p := range protocols {
		p = strings.TrimSpace(p)
		if strings.HasPrefix(p, SubprotocolTokenPrefix) {
			return strings.TrimPrefix(p, SubprotocolTokenPrefix)
		}
	}
	return ""
}
