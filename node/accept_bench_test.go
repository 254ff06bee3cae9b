package node

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// The accept benchmark's client runs in a child process, so that the
// benchmark process's CPU time (getrusage) is the servers' alone. The test
// binary re-executes itself as the client when envAcceptClient is set.
const (
	envAcceptClient = "WSDIRECT_ACCEPTBENCH_CLIENT"
	envAcceptSeed   = "WSDIRECT_ACCEPTBENCH_SEED"
	// envAcceptConns is the connections per round (default 2,000).
	envAcceptConns = "WSDIRECT_ACCEPT_CONNS"
	// envAcceptRounds is the rounds per server (default 5).
	envAcceptRounds = "WSDIRECT_ACCEPT_ROUNDS"
	// envAcceptOnly, "node" or "bare", runs one server's rounds only: with
	// -cpuprofile, a profile of that server's accept path alone.
	envAcceptOnly = "WSDIRECT_ACCEPT_ONLY"
	acceptNode    = "acceptbench"
	// acceptInFlight is the client's concurrent handshakes.
	acceptInFlight = 16
)

func init() {
	// Before TestMain: the client child never runs tests.
	if os.Getenv(envAcceptClient) == "1" {
		os.Exit(runAcceptClient())
	}
}

// BenchmarkAcceptCPU measures the server CPU time per accepted WebSocket
// (TCP accept, HTTP request, token check, upgrade, registration) of the
// node's Handler next to a bare gorilla/websocket echo server (a read
// goroutine per connection, 512 B read buffer, pooled write buffer) in the
// same process and run. Rounds alternate between the two servers; in each,
// a client child process opens WSDIRECT_ACCEPT_CONNS connections (default
// 2,000) with 16 handshakes in flight, holds them until the server has
// registered all, and closes them outside the measured window. The servers'
// CPU is this process's getrusage user+system time over the window. The
// client mints a token per connection for both servers, so both read the
// same request. It reports the median µs per accept of each and x-bare,
// the ratio of the medians; the log has every round.
//
// Run: go test -run '^$' -bench AcceptCPU -benchtime 1x ./node
func BenchmarkAcceptCPU(b *testing.B) {
	conns := envInt(b, envAcceptConns, 2000)
	rounds := envInt(b, envAcceptRounds, 5)
	raiseNoFile(b, conns+200)

	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i * 7)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	ks := token.KeySet{}
	ks.Add(priv.Public().(ed25519.PublicKey))

	conf := DefaultConfig()
	conf.Name = acceptNode
	conf.MaxConns = conns + 100
	conf.Rebalance.Enabled = false
	// What the binary logs by default: info and above, debug off.
	conf.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	pub := &countPub{}
	n, err := New(conf, token.NewVerifier(acceptNode, ks).RejectIssuedBefore(time.Now()), pub)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close() })
	nodeAddr := serveOn(b, n.HTTPServer(""))
	bare := &bareEcho{}
	bareAddr := serveOn(b, &http.Server{Handler: bare.handler()})

	client := startAcceptClient(b, seed)
	type server struct {
		name          string
		addr          string
		conns         func() int
		us            []float64
		bytes, allocs float64 // heap allocated per accept, all rounds
	}
	servers := []*server{
		{name: "node", addr: nodeAddr, conns: n.Conns},
		{name: "bare", addr: bareAddr, conns: func() int { return int(bare.conns.Load()) }},
	}
	if only := os.Getenv(envAcceptOnly); only != "" {
		servers = slices.DeleteFunc(servers, func(s *server) bool { return s.name != only })
		if len(servers) == 0 {
			b.Fatalf("%s=%q: want node or bare", envAcceptOnly, only)
		}
	}
	// One small round each first: runtime, pools and maps grow once.
	for _, s := range servers {
		acceptRound(b, client, s.addr, s.conns, 200)
	}

	b.ResetTimer()
	for i := 0; i < b.N*rounds; i++ {
		order := servers
		if i%2 == 1 {
			order = slices.Clone(servers)
			slices.Reverse(order)
		}
		for _, s := range order {
			r := acceptRound(b, client, s.addr, s.conns, conns)
			s.us = append(s.us, r.us)
			s.bytes += r.bytes / float64(b.N*rounds)
			s.allocs += r.allocs / float64(b.N*rounds)
		}
	}
	b.StopTimer()
	med := map[string]float64{}
	for _, s := range servers {
		slices.Sort(s.us)
		med[s.name] = s.us[len(s.us)/2]
		b.ReportMetric(med[s.name], s.name+"-µs/accept")
		b.ReportMetric(s.bytes, s.name+"-B/accept")
		b.ReportMetric(s.allocs, s.name+"-allocs/accept")
		b.Logf("%s µs/accept per round, sorted: %s", s.name, fmtFloats(s.us))
	}
	if len(servers) == 2 {
		b.ReportMetric(med["node"]/med["bare"], "x-bare")
	}
}

// roundResult is one round's cost per accepted connection.
type roundResult struct{ us, bytes, allocs float64 }

// acceptRound has the client open n connections to addr and returns this
// process's CPU µs (and heap allocation) per connection, from before the
// first to after the server registered the last; then the client closes
// them and the server lets them go (not measured).
func acceptRound(b *testing.B, c *acceptClient, addr string, conns func() int, n int) roundResult {
	b.Helper()
	c.say(b, "PREP ws://"+addr+wire.WSPath+" "+strconv.Itoa(n), "READY")
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	before := cpuTime(b)
	c.say(b, "GO", "DONE")
	waitConns(b, conns, n)
	used := cpuTime(b) - before
	runtime.ReadMemStats(&m1)
	c.say(b, "CLOSE", "CLOSED")
	waitConns(b, conns, 0)
	return roundResult{
		us:     float64(used.Microseconds()) / float64(n),
		bytes:  float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n),
		allocs: float64(m1.Mallocs-m0.Mallocs) / float64(n),
	}
}

func waitConns(b *testing.B, conns func() int, want int) {
	b.Helper()
	err := probe.Poll(context.Background(), 60*time.Second, time.Millisecond, fmt.Sprintf("the server to hold %d connections", want), func() error {
		got := conns()
		return probe.Check(got == want, "it holds %d", got)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// cpuTime is this process's user plus system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func serveOn(b *testing.B, srv *http.Server) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func raiseNoFile(b *testing.B, need int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if uint64(need) > lim.Cur {
		b.Skipf("%d connections need more than the open-files limit %d", need, lim.Cur)
	}
}

func fmtFloats(fs []float64) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strings.Join(s, " ")
}

// countPub is a Publisher that keeps the last count, as cheaply as
// cluster.Cluster.SetConns does (an atomic store).
type countPub struct{ n atomic.Int64 }

func (p *countPub) SetConns(n int)         { p.n.Store(int64(n)) }
func (p *countPub) SetDraining(bool) error { return nil }

// bareEcho is the baseline: gorilla/websocket with nothing around it but a
// connection count.
type bareEcho struct{ conns atomic.Int64 }

func (e *bareEcho) handler() http.Handler {
	up := websocket.Upgrader{
		ReadBufferSize:  512,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		e.conns.Add(1)
		go func() {
			defer e.conns.Add(-1)
			defer ws.Close()
			for {
				mt, p, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if err := ws.WriteMessage(mt, p); err != nil {
					return
				}
			}
		}()
	})
}

type acceptClient struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startAcceptClient(b *testing.B, seed []byte) *acceptClient {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envAcceptClient+"=1", envAcceptSeed+"="+base64.StdEncoding.EncodeToString(seed))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		in.Close() // the child exits when stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return &acceptClient{cmd: cmd, in: in, out: bufio.NewScanner(out)}
}

// say sends one command line and waits for an answer starting with want.
func (c *acceptClient) say(b *testing.B, cmd, want string) {
	b.Helper()
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		b.Fatal(err)
	}
	got := make(chan bool, 1)
	go func() { got <- c.out.Scan() }()
	select {
	case ok := <-got:
		if !ok {
			b.Fatalf("client exited: %v", c.out.Err())
		}
		if line := c.out.Text(); !strings.HasPrefix(line, want) {
			b.Fatalf("client answered %q to %q", line, strings.Fields(cmd)[0])
		}
	case <-time.After(120 * time.Second):
		b.Fatalf("client did not answer %q", strings.Fields(cmd)[0])
	}
}

// runAcceptClient is the child: it reads commands from stdin, one a line,
// and answers each on stdout:
//
//	PREP <url> <n>  mint n tokens for url            READY
//	GO              open the n connections           DONE | ERR <why>
//	CLOSE           close them                       CLOSED
//
// and exits when stdin closes.
func runAcceptClient() int {
	seed, err := base64.StdEncoding.DecodeString(os.Getenv(envAcceptSeed))
	if err != nil || len(seed) != ed25519.SeedSize {
		fmt.Fprintln(os.Stderr, "bad", envAcceptSeed)
		return 2
	}
	signer := token.NewSigner(ed25519.NewKeyFromSeed(seed))
	dialers := make([]*websocket.Dialer, 8)
	for i := range dialers {
		// Eight source addresses, so ports in TIME_WAIT from earlier
		// rounds never run short.
		nd := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
		dialers[i] = &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second,
			ReadBufferSize: 256, WriteBufferSize: 256}
	}
	var (
		urls []string
		open []*websocket.Conn
	)
	out := bufio.NewWriter(os.Stdout)
	answer := func(s string) { fmt.Fprintln(out, s); out.Flush() }
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 3 && f[0] == "PREP":
			n, _ := strconv.Atoi(f[2])
			urls = make([]string, n)
			var err error
			for i := range urls {
				var tok string
				if tok, _, err = signer.Mint("user-"+strconv.Itoa(i), acceptNode); err != nil {
					break
				}
				urls[i] = f[1] + "?" + wire.TokenQueryParam + "=" + url.QueryEscape(tok)
			}
			if err != nil {
				answer("ERR " + err.Error())
				continue
			}
			answer("READY")
		case len(f) == 1 && f[0] == "GO":
			open = make([]*websocket.Conn, len(urls))
			var next atomic.Int64
			var wg sync.WaitGroup
			var firstErr atomic.Value
			for range acceptInFlight {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= len(urls) || firstErr.Load() != nil {
							return
						}
						ws, _, err := dialers[i%len(dialers)].Dial(urls[i], nil)
						if err != nil {
							firstErr.CompareAndSwap(nil, fmt.Errorf("conn %d: %w", i, err))
							return
						}
						open[i] = ws
					}
				})
			}
			wg.Wait()
			if err, ok := firstErr.Load().(error); ok {
				answer("ERR " + err.Error())
				continue
			}
			answer("DONE")
		case len(f) == 1 && f[0] == "CLOSE":
			for _, ws := range open {
				if ws != nil {
					ws.Close()
				}
			}
			open = nil
			answer("CLOSED")
		default:
			answer("ERR unknown command")
		}
	}
	if err := in.Err(); err != nil && !errors.Is(err, io.EOF) {
		return 1
	}
	return 0
}
