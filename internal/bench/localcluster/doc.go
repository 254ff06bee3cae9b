// Package localcluster runs a real wsdirect cluster on loopback: one or more
// wsdirect-auth processes and N wsdirect-node processes, started from built
// binaries, each on its own 127.0.0.x address, with freshly generated
// signing and gossip keys, encrypted gossip and a users file holding one
// bench user. It waits until every node is ready and visible to auth, and
// offers the fault injections the demo, the tests and the benchmarks need:
// kill a node, drain it, restart auth, read each process's memory.
//
// Every process runs in its own process group with a parent-death signal,
// and Stop (registered with t.Cleanup or deferred) kills what is left, so a
// failing test leaves no orphans behind.
package localcluster
