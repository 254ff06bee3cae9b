// Package idleconn measures what an idle WebSocket connection costs a
// server, side by side in one run (docs/benchmarks.md, "Idle connections
// side by side"): wsdirect-node over ws:// and wss://, optionally a second
// wsdirect-node built from another git revision (today's node next to a new
// one), a bare gorilla/websocket echo server and a lesismal/nbio echo
// server (epoll, no goroutine per connection).
//
// Each server runs alone in a process of its own, and client worker
// processes (each under the 20,000-file limit of one process) open
// connections to it from several loopback source addresses at a bounded
// rate, in steps: at every mark of the sweep (1,000, 2,000, 4,000, ...
// connections) the harness pauses, lets the server settle, and reads
//
//   - the server's VmRSS, then asks it to run the garbage collector and
//     return freed memory to the OS (package scavenge) and reads it again;
//   - the server's CPU time (utime+stime) spent in the connect steps;
//   - the kernel's slab memory (/proc/meminfo Slab and, where readable,
//     the /proc/slabinfo caches a socket takes: TCP, sock_inode_cache,
//     filp, dentry, eventpoll_epi, eventpoll_pwq), for both ends of every
//     loopback connection.
//
// The wsdirect nodes are real wsdirect-node processes in a one-node local
// cluster (localcluster) with a real wsdirect-auth: every connection is
// opened through auth (POST /v1/connect, then the upgrade with its token),
// as clients do. The harness builds wsdirect-node itself, with one more
// file in its main package that serves the scavenge socket; nothing else of
// the node changes.
package idleconn
