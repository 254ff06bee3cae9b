// Package testcluster starts a whole wsdirect cluster inside one test
// process: auth instances and nodes, each a real cluster.Cluster (serf over
// loopback, encrypted with a shared gossip key) plus its real HTTP server on
// its own 127.0.0.x address. Integration tests and benchmarks in
// internal/testing/e2e drive
// it with the real client.
//
// Nodes listen on 127.0.0.11, .12, ...; auth instances on 127.0.0.2, .3, ...
// Every port is picked by the kernel (port 0), so several clusters can run
// at once. Faults are injected the way they happen in production: KillNode
// drops every TCP connection and stops gossip without a graceful leave (a
// crash), DrainNode runs the node's own drain, RestartAuth stops an auth
// instance and starts a fresh one on the same address.
package testcluster
