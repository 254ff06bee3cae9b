// Package compare measures wsdirect against the two balancer designs of the
// article wsdirect started from
// (https://www.codeceo.com/article/websocket-load-balanced.html), the
// article's HAProxy approach and its L4 balancer, on one machine and in one
// run, and scripts the failure drills.
//
// Compare runs the same client workload (loadtest.Run: full auth-then-
// connect flow, then echoed messages at a fixed rate) against three paths in
// front of the same three wsdirect-node processes on loopback:
//
//   - direct: wsdirect-auth picks the node and mints a token for it, the
//     client dials that node;
//   - haproxy-http: the real haproxy binary in "mode http" with the config
//     rendered by haproxycfg, including the article's "source" IPs;
//   - haproxy-tcp: haproxy in "mode tcp", standing in for an L4 balancer
//     such as an NLB.
//
// Behind HAProxy the client cannot know which node it will land on, so
// the same wsdirect-auth runs with -balancer-url: it checks the
// credentials as on the direct path, mints the token for the audience
// every node behind HAProxy accepts (-token-audience), and sends the
// client to HAProxy. The nodes verify it exactly as they verify a token
// for their own name (Ed25519 signature, expiry, single-use jti), so the
// per-connection work on auth and on the nodes is the same on every path.
//
// The drills (Drill) run managed clients (client.Managed: they go back
// through auth with jittered backoff when they lose their node) in this
// process or spread over worker processes, and measure what happens when a
// node is killed or drained, when auth restarts, and when HAProxy is killed.
//
// Figures are measured on the real binaries. Heavy runs belong in
// `wsdirect-bench compare` / `wsdirect-bench drill`; the tests run CI-sized
// versions so the harness cannot rot.
package compare
