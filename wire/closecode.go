package wire

// Close codes. Following centrifuge, a range tells the client what to do:
// 4000–4499 means "reconnect through auth" (it will get a different or the
// same node with a fresh token); 4500–4999 means "do not reconnect".
const (
	// CloseDraining: the node is draining; reconnect elsewhere.
	CloseDraining = 4000
	// CloseShutdown: the node is shutting down; reconnect elsewhere.
	CloseShutdown = 4001
	// CloseUpstreamUnavailable: the node could not reach its upstream app.
	CloseUpstreamUnavailable = 4002
	// CloseRebalance: the node is moving some of its clients to nodes with
	// fewer (docs/design.md section 15). Reconnect through auth as after a
	// drain, and say so in the connect request (ConnectRequest.Reason =
	// ReasonRebalance), so that auth places the client on the least loaded
	// node and the new node does not move it again.
	CloseRebalance = 4003

	// ClosePolicy: the server refuses this client; do not reconnect.
	ClosePolicy = 4500
)

// ShouldReconnect reports whether a client that saw close code code should go
// back to the auth service for a new node and token.
func ShouldReconnect(code int) bool {
	switch {
	case code >= 4000 && code < 4500:
		return true
	case code >= 4500 && code < 5000:
		return false
	}
	switch code {
	case 1001, // going away
		1006, // abnormal closure: connection lost without a close frame
		1011, // server error
		1012, // service restart
		1013, // try again later
		1014: // bad gateway
		return true
	}
	// 1000 normal closure, 1008 policy violation, 1009 message too big and
	// the rest are deliberate: reconnecting would repeat them.
	return false
}
