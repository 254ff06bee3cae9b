package node

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/testca"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/tlscert"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// The memory benchmark needs the node in its own process: 18,000
// connections are 18,000 fds on each side, and one process may hold at most
// 20,000. The test binary re-executes itself as the node when this variable
// is set.
const (
	envChild   = "WSDIRECT_MEMBENCH_CHILD"
	envPubKey  = "WSDIRECT_MEMBENCH_PUBKEY"
	envMemConn = "WSDIRECT_MEM_CONNS"
	// envReadBuf overrides the child's ReadBufferSize, to measure what the
	// small read buffer saves.
	envReadBuf = "WSDIRECT_MEM_READBUF"
	// envPerUser overrides MaxConnsPerUser (default: DefaultConfig's),
	// to measure what counting connections per user costs.
	envPerUser = "WSDIRECT_MEM_PER_USER"
	// envHeapProfile, when set, is a file the child writes a heap profile
	// to after each GC request (the last one is taken with all connections
	// open): go tool pprof -sample_index=inuse_space <file>.
	envHeapProfile = "WSDIRECT_MEM_HEAPPROFILE"
	// envTLSCert and envTLSKey, when set, make the child serve wss:// with
	// that certificate through internal/tlscert, as wsdirect-node -tls
	// files does.
	envTLSCert = "WSDIRECT_MEMBENCH_TLS_CERT"
	envTLSKey  = "WSDIRECT_MEMBENCH_TLS_KEY"
	benchNode  = "membench"
)

// memBenchPing is the child's PingInterval.
const memBenchPing = 3 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runMemChild())
	}
	os.Exit(m.Run())
}

// runMemChild serves a node with DefaultConfig on 127.0.0.1 and speaks a
// line protocol with the parent: it prints "ADDR host:port"; on SIGUSR1 it
// runs the GC, returns freed memory to the OS and prints "FREED <stats>";
// it exits when stdin closes.
func runMemChild() int {
	if os.Getenv(envHeapProfile) != "" {
		// Fine sampling for a useful profile; it costs memory itself, so
		// figures from a profiled run are a little high.
		runtime.MemProfileRate = 256
	}
	raw, err := base64.StdEncoding.DecodeString(os.Getenv(envPubKey))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		fmt.Fprintln(os.Stderr, "bad", envPubKey)
		return 2
	}
	ks := token.KeySet{}
	ks.Add(ed25519.PublicKey(raw))
	conf := DefaultConfig()
	conf.Name = benchNode
	conf.MaxConns = 19500
	// One node alone: nothing to rebalance with, and no view.
	conf.Rebalance.Enabled = false
	// Keepalive is part of an idle connection's cost: ping often enough
	// that every connection has been pinged (and has answered) before the
	// parent measures. The interval changes how often, not how much memory.
	conf.PingInterval = memBenchPing
	conf.PongWait = 10 * memBenchPing
	if v := os.Getenv(envReadBuf); v != "" {
		if conf.ReadBufferSize, err = strconv.Atoi(v); err != nil {
			fmt.Fprintln(os.Stderr, "bad", envReadBuf)
			return 2
		}
	}
	if v := os.Getenv(envPerUser); v != "" {
		if conf.MaxConnsPerUser, err = strconv.Atoi(v); err != nil {
			fmt.Fprintln(os.Stderr, "bad", envPerUser)
			return 2
		}
	}
	conf.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := New(conf, token.NewVerifier(benchNode, ks).RejectIssuedBefore(time.Now()), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var serveLn net.Listener = ln
	if cert := os.Getenv(envTLSCert); cert != "" {
		tc := tlscert.DefaultConfig()
		tc.Mode = tlscert.ModeFiles
		tc.CertFile, tc.KeyFile = cert, os.Getenv(envTLSKey)
		tc.Tickets = tlscert.TicketsProcess
		tc.Logger = conf.Logger
		certs, err := tlscert.New(tc)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		serveLn = certs.Listener(Listener(ln))
	}
	srv := n.HTTPServer(ln.Addr().String())
	go func() { _ = srv.Serve(serveLn) }()
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "ADDR %s\n", ln.Addr())
	out.Flush()

	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	for {
		select {
		case <-stdinClosed:
			return 0
		case <-usr1:
			start := time.Now()
			runtime.GC()
			debug.FreeOSMemory()
			took := time.Since(start)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if path := os.Getenv(envHeapProfile); path != "" {
				if f, err := os.Create(path); err == nil {
					_ = pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			fmt.Fprintf(out, "FREED conns=%d goroutines=%d heap_alloc=%d heap_inuse=%d stack_inuse=%d sys=%d took=%s\n",
				n.Conns(), runtime.NumGoroutine(), ms.HeapAlloc, ms.HeapInuse, ms.StackInuse, ms.Sys, took)
			out.Flush()
		}
	}
}

// BenchmarkIdleConnMemory measures the node's RSS per idle WebSocket, ws://
// and wss:// side by side in one run (docs/design.md section 11: at most
// 8 KiB per ws connection; wss at most 1.5x that and at most 12 KiB, at
// 18,000 connections). For each, the node runs in a child process of its
// own; this process opens WSDIRECT_MEM_CONNS connections (default 2,000; set
// 18000 for the real figure; WSDIRECT_MEM_READBUF overrides the node's
// ReadBufferSize) from 127.0.0.2–127.0.0.9 and reads the child's VmRSS
// before and after. Each sub-benchmark reports:
//   - B/conn-rss: RSS growth per connection as it stands after the
//     connections opened (handshake garbage not yet returned to the OS);
//   - B/conn-scavenged: the same after a GC and debug.FreeOSMemory, i.e. the
//     steady state of an idle node once the background scavenger caught up;
//
// and wss also x-ws-rss and x-ws-scavenged, its ratios to the ws figures.
//
// Run: go test -run '^$' -bench IdleConnMemory -benchtime 1x ./node
func BenchmarkIdleConnMemory(b *testing.B) {
	var ws memResult
	b.Run("ws", func(b *testing.B) { ws = idleConnMemory(b, false) })
	b.Run("wss", func(b *testing.B) {
		wss := idleConnMemory(b, true)
		if ws.raw > 0 && ws.scavenged > 0 {
			b.ReportMetric(wss.raw/ws.raw, "x-ws-rss")
			b.ReportMetric(wss.scavenged/ws.scavenged, "x-ws-scavenged")
		}
	})
}

// memResult is one configuration's bytes per connection.
type memResult struct{ raw, scavenged float64 }

func idleConnMemory(b *testing.B, useTLS bool) memResult {
	conns := envInt(b, envMemConn, 2000)
	raiseNoFile(b, conns+200)

	_, priv, err := token.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	signer := token.NewSigner(priv).WithTTL(5 * time.Minute)
	var env []string
	var clientTLS *tls.Config
	scheme := "ws://"
	if useTLS {
		ca, err := testca.New("membench CA")
		if err != nil {
			b.Fatal(err)
		}
		leaf, err := ca.Issue([]string{"127.0.0.1"}, time.Time{}, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		certFile, keyFile, err := leaf.WriteFiles(b.TempDir(), "tls")
		if err != nil {
			b.Fatal(err)
		}
		env = append(env, envTLSCert+"="+certFile, envTLSKey+"="+keyFile)
		clientTLS = &tls.Config{RootCAs: ca.Pool()}
		scheme = "wss://"
	}
	child := startMemChild(b, signer.PublicKey(), env...)

	dialers := make([]*websocket.Dialer, 8)
	for i := range dialers {
		nd := &net.Dialer{Timeout: 10 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
		dialers[i] = &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second,
			ReadBufferSize: 256, WriteBufferSize: 256, TLSClientConfig: clientTLS}
	}
	var (
		mu   sync.Mutex
		open []*websocket.Conn
	)
	b.Cleanup(func() {
		for _, ws := range open {
			ws.Close()
		}
	})
	// dialN opens n connections with 32 dialers in flight.
	dialN := func(n int) []*websocket.Conn {
		var next atomic.Int64
		var wg sync.WaitGroup
		var firstErr atomic.Value
		got := make([]*websocket.Conn, 0, n)
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(n) || firstErr.Load() != nil {
						return
					}
					tok, _, err := signer.Mint(fmt.Sprintf("user-%d", i), benchNode)
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					u := scheme + child.addr + wire.WSPath + "?" + wire.TokenQueryParam + "=" + url.QueryEscape(tok)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					ws, _, err := dialers[i%8].DialContext(ctx, u, nil)
					cancel()
					if err != nil {
						firstErr.CompareAndSwap(nil, fmt.Errorf("conn %d: %w", i, err))
						return
					}
					// Reading answers the node's pings, like a live client,
					// with the Go client's 10 s bound on the pong: gorilla's
					// default 1 s is missed by a starved parent (18,000 TLS
					// handshakes on 2 cores), and the node then drops the
					// connection at its pong deadline.
					ws.SetPingHandler(func(data string) error {
						err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
						if errors.Is(err, websocket.ErrCloseSent) {
							return nil
						}
						return err
					})
					go func() {
						for {
							if _, _, err := ws.NextReader(); err != nil {
								return
							}
						}
					}()
					mu.Lock()
					got = append(got, ws)
					open = append(open, ws)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err, ok := firstErr.Load().(error); ok {
			b.Fatal(err)
		}
		return got
	}

	// Warm up, so one-time runtime and pool growth is not charged to the
	// measured connections.
	warm := dialN(max(50, conns/20))
	for _, ws := range warm {
		ws.Close()
	}
	waitChildConns(b, child, 0)
	child.free(b)
	before := child.rss(b)

	b.ResetTimer()
	start := time.Now()
	dialN(conns)
	b.StopTimer()
	rate := float64(conns) / time.Since(start).Seconds()
	waitChildConns(b, child, conns)
	// Let handshake goroutines exit and at least one ping round pass.
	time.Sleep(memBenchPing + 2*time.Second)
	raw := child.rss(b)
	stats := child.free(b)
	scav := child.rss(b)

	res := memResult{raw: float64(raw-before) / float64(conns), scavenged: float64(scav-before) / float64(conns)}
	b.ReportMetric(res.raw, "B/conn-rss")
	b.ReportMetric(res.scavenged, "B/conn-scavenged")
	b.ReportMetric(float64(conns), "conns")
	b.ReportMetric(rate, "conns/s")
	b.Logf("%sconns=%d rss before=%d KiB, after=%d KiB, after scavenge=%d KiB; child %s",
		scheme, conns, before>>10, raw>>10, scav>>10, stats)
	return res
}

type memChild struct {
	cmd  *exec.Cmd
	addr string
	out  *bufio.Scanner
}

func startMemChild(b *testing.B, pub ed25519.PublicKey, env ...string) *memChild {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChild+"=1", envPubKey+"="+base64.StdEncoding.EncodeToString(pub)), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &memChild{cmd: cmd, out: bufio.NewScanner(stdout)}
	b.Cleanup(func() {
		stdin.Close() // the child exits when stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line := c.line(b)
	addr, ok := strings.CutPrefix(line, "ADDR ")
	if !ok {
		b.Fatalf("child said %q", line)
	}
	c.addr = addr
	return c
}

func (c *memChild) line(b *testing.B) string {
	b.Helper()
	got := make(chan bool, 1)
	go func() { got <- c.out.Scan() }()
	select {
	case ok := <-got:
		if !ok {
			b.Fatalf("child exited: %v", c.out.Err())
		}
		return c.out.Text()
	case <-time.After(60 * time.Second):
		b.Fatal("child did not answer")
		return ""
	}
}

// free asks the child to GC and return memory to the OS; it returns the
// child's runtime stats line.
func (c *memChild) free(b *testing.B) string {
	b.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	line := c.line(b)
	stats, ok := strings.CutPrefix(line, "FREED ")
	if !ok {
		b.Fatalf("child said %q", line)
	}
	return stats
}

// rss reads the child's resident set size in bytes from /proc.
func (c *memChild) rss(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc status")
	return 0
}

// waitChildConns waits until the child reports want open connections.
func waitChildConns(b *testing.B, c *memChild, want int) {
	b.Helper()
	err := probe.Poll(context.Background(), 30*time.Second, 200*time.Millisecond, fmt.Sprintf("the child to hold %d connections", want), func() error {
		stats := c.free(b)
		return probe.Check(strings.HasPrefix(stats, fmt.Sprintf("conns=%d ", want)), "child reports %s", stats)
	})
	if err != nil {
		b.Fatal(err)
	}
}
