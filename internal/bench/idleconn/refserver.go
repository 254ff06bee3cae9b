package idleconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	nbws "github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/scavenge"
)

// ServerCommand is the subcommand under which the harness's executable runs
// a reference echo server: "exe ServerCommand <kind> <listen addr> <scavenge
// socket>". It prints "ADDR host:port" on stdout once it listens and exits
// when stdin closes.
const ServerCommand = "idle-server"

// Reference server kinds.
const (
	// KindGorilla is a bare gorilla/websocket echo: one read goroutine per
	// connection, started by the upgrade handler, which returns (so that
	// net/http's connection goroutine and its deep stack are gone, as in
	// gorilla's own examples); a 512-byte read buffer, write buffers from a
	// sync.Pool, an echo loop of NextReader/NextWriter and nothing else (no
	// pings, no deadlines).
	KindGorilla = "gorilla"
	// KindNbio is a lesismal/nbio echo: nbhttp's epoll engine and its
	// websocket upgrader, no goroutine per connection, echo in OnMessage.
	KindNbio = "nbio"
)

// RunServer is the body of ServerCommand.
func RunServer(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: %s <%s|%s> <listen host:port> <scavenge socket>", ServerCommand, KindGorilla, KindNbio)
	}
	kind, listen, socket := args[0], args[1], args[2]
	if err := scavenge.Listen(socket); err != nil {
		return err
	}
	var (
		addr net.Addr
		stop func()
	)
	switch kind {
	case KindGorilla:
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: gorillaEcho(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		addr, stop = ln.Addr(), func() { srv.Close() }
	case KindNbio:
		var err error
		if addr, stop, err = startNbio(listen); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: unknown kind %q (want %s or %s)", ServerCommand, kind, KindGorilla, KindNbio)
	}
	defer stop()
	if _, err := fmt.Fprintf(stdout, "ADDR %s\n", addr); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdin); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

func gorillaEcho() http.Handler {
	up := &websocket.Upgrader{
		ReadBufferSize:  512,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		go echo(c)
	})
}

func echo(c *websocket.Conn) {
	defer c.Close()
	for {
		mt, rd, err := c.NextReader()
		if err != nil {
			return
		}
		wr, err := c.NextWriter(mt)
		if err != nil {
			return
		}
		if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if err := wr.Close(); err != nil {
			return
		}
	}
}

func startNbio(listen string) (net.Addr, func(), error) {
	// Its log lines would go to stdout, where the harness reads ADDR.
	logging.SetLevel(logging.LevelError)
	up := nbws.NewUpgrader()
	// No read deadline: like the gorilla echo, an idle client is kept for
	// as long as it stays (nbio's default closes it after 120 s of silence).
	up.KeepaliveTime = 0
	up.CheckOrigin = func(*http.Request) bool { return true }
	up.OnMessage(func(c *nbws.Conn, mt nbws.MessageType, data []byte) { _ = c.WriteMessage(mt, data) })
	var (
		mu sync.Mutex
		ln net.Listener
	)
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{listen},
		// The engine does not say which port ":0" got: listen here.
		Listen: func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			mu.Lock()
			ln = l
			mu.Unlock()
			return l, err
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = up.Upgrade(w, r, nil)
		}),
	})
	if err := engine.Start(); err != nil {
		return nil, nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	if ln == nil {
		engine.Stop()
		return nil, nil, errors.New("nbio: the engine started without a listener")
	}
	return ln.Addr(), engine.Stop, nil
}
