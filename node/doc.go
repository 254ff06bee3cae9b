// Package node is the WebSocket side of wsdirect: it serves clients that the
// auth service assigned to this node.
//
// A Node checks each client's connection token before the upgrade (offline,
// with the auth service's public keys; tokens issued before the node started
// are refused, so a token stays single use across a restart), enforces the
// connection cap with an atomic reservation so a burst can never overshoot
// it, caps each user's connections (MaxConnsPerUser), and then either echoes
// messages or relays them frame for frame to an upstream WebSocket app. It
// publishes its live count to the cluster through a Publisher, drains in
// batches with a "reconnect elsewhere" close code, and exposes /healthz,
// /readyz and Prometheus /metrics.
//
// With a cluster View it rebalances (RebalanceConfig): a node holding more
// than (1 + Tolerance) times its cap-weighted share of the cluster's clients,
// in a steady cluster with no drain in progress, moves the excess to nodes
// with fewer, closing them with wire.CloseRebalance at its part of a
// cluster-wide MaxRate; clients moved here (tokens marked rebalanced) are not
// moved again for a while (docs/design.md section 15).
//
// With Config.Upstream set, the node dials the upstream for each client
// before it upgrades the client's connection, sending the user in
// wire.UserHeader. A failed dial is refused like any other: 502 with
// {"error":"upstream_unavailable"} and Retry-After, so the client retries
// through auth instead of seeing a socket open and close at once. An
// upstream lost later closes the client with wire.CloseUpstreamUnavailable
// (4002); a close frame from either side is passed on with its code and
// reason.
//
// Idle connections are kept cheap, because a node is meant to hold tens of
// thousands of them: no goroutine waits on a silent connection. One epoll
// loop per process (internal/readiness) starts a connection's read when its
// socket has data; internal/wsframe, under gorilla, hands gorilla one frame
// at a time and answers pings itself, so nothing is left in a buffer and
// nothing waits inside gorilla when the read returns. Read buffers are
// small, write buffers come from a shared pool and are held only while a
// message is being written, there is no writer goroutine per connection,
// and one shared pinger sends keepalive pings and drops silent peers.
// Config.WaitingReads (and the fallback where epoll is missing) keeps a
// goroutine waiting in each read instead.
package node
