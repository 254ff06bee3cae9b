// Package scalerun is the scale run past the port ceiling (docs/design.md
// section 11; docs/benchmarks.md, "Scale past the port ceiling"): it starts
// a real local cluster (localcluster: one or more wsdirect-auth and N
// wsdirect-node processes on loopback), opens connections through auth with
// several client worker processes (loadtest.RunWorkers), holds them while it
// samples every process, and reports what was held and what limited it.
//
// Every process on the target machines may hold at most 20,000 open files,
// so 150,000 connections need at least 8 node and 8 client processes. The
// report says, for each process, the RLIMIT_NOFILE it ran with and the file
// descriptors it used at rest and at the peak, and for the host the
// settings that bound a run like this (ip_local_port_range, somaxconn,
// tcp_max_syn_backlog, tcp_mem, file-max, nr_open, memory) together with
// the counters that show whether one was hit (listen-queue overflows, TCP
// memory pages, open files system wide) and the clients' errors by kind
// (EADDRNOTAVAIL, EMFILE, node full, timeouts).
//
// It only reads /proc and /proc/sys; it never changes a host setting.
package scalerun
