// Package cluster is wsdirect's membership and live load view, built on
// hashicorp/serf.
//
// Every node and every auth instance is a serf member. Static facts (role,
// public address, WebSocket port, cap, zone, draining) travel in serf tags,
// which change rarely. The volatile connection count travels in serf user
// events instead: updating tags on every connect would bump the member's
// incarnation and flood the cluster with alive messages (see docs/design.md
// section 4 and BenchmarkFreshnessUserEvents / BenchmarkFreshnessTags for the
// measurement that picked user events).
//
// Gossip is encrypted with a serf keyring (a 32-byte AES key shared by the
// whole cluster), and memberlist is told to verify both incoming and outgoing
// gossip, so a process without the key can neither join nor inject counts.
// Only Dev mode may run without a key.
//
// A Cluster keeps its view of the members from serf's event channel in a
// single goroutine; Members and Nodes return copies, so callers (the auth
// service's picker) never race with gossip.
package cluster
