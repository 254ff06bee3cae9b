package main

import "log/slog"

// fileReserve is the descriptors a node holds besides its clients: the
// listener, gossip sockets, epoll, the admin and metrics connections, log
// files. Measured at about 15 with no client (docs/benchmarks.md, scale run);
// 64 leaves room for scrapes and health checks.
const fileReserve = 64

// checkFileLimit warns when -max-conns cannot be reached because the open
// file limit runs out first: past it, accepts fail with EMFILE instead of
// the clean 503 the cap gives, and auth keeps assigning clients to a node
// that cannot take them.
func checkFileLimit(log *slog.Logger, maxConns int, limit uint64, known bool) {
	if !known || uint64(maxConns)+fileReserve <= limit {
		return
	}
	usable := 0
	if limit > fileReserve {
		usable = int(limit - fileReserve)
	}
	log.Warn("-max-conns is above what the open-file limit allows; lower it or raise LimitNOFILE",
		"max_conns", maxConns, "nofile", limit, "usable_conns", usable)
}
