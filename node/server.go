package node

import (
	"log/slog"
	"net/http"
	"time"
)

// HTTPServer returns an http.Server for addr serving n.Handler() with the
// node's hygiene settings: the request headers must arrive within
// HandshakeTimeout (a client sending half a request is dropped), headers are
// capped at 16 KiB (a token is at most token.MaxTokenBytes), and net/http's
// own error log goes to the node's logger at debug level.
func (n *Node) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           n.Handler(),
		ReadHeaderTimeout: n.conf.HandshakeTimeout,
		// Deadlines set here are cleared by the upgrade on hijacked
		// connections; they bound the plain HTTP endpoints.
		ReadTimeout:    n.conf.HandshakeTimeout,
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
}
