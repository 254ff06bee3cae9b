// Package loadtest drives wsdirect the way real clients do: for every
// connection an HTTP request to auth, then a WebSocket upgrade straight to
// the assigned node. It opens connections at a target rate, spreads them over
// several local source IPs (so one machine can pass 65,536 connections to one
// node), optionally exchanges messages to measure round-trip time, and
// reports connect rate, handshake latency percentiles, the per-node
// distribution and errors by kind.
//
// One process is limited to 20,000 open files here, so RunWorkers splits a
// run over child processes ("wsdirect-bench worker") and merges their
// reports; latency histograms merge exactly, bucket by bucket.
//
// Demo is the flow behind `make demo`: a local cluster, 10,000 reconnecting
// clients, a killed node and the clients moving to the others.
package loadtest
