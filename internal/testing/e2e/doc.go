// Package e2e holds the integration tests and runtime benchmarks of
// wsdirect: auth instances and nodes run in-process on 127.0.0.x addresses
// (internal/testing/testcluster), with real serf gossip, real HTTP servers
// and the real Go client, and the tests check what the servers actually
// hold against what auth assigned. Faults (drain, a crashed node, an auth
// restart) are injected into that running cluster.
//
// Run with: go test -race -count=1 ./internal/testing/e2e/
// Benchmarks: go test -run '^$' -bench . -benchtime 1x ./internal/testing/e2e/
package e2e
