package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/localcluster"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
	"github.com/wsdirect/terraform-provider-wsdirect/wire"
)

// TestSimultaneousMessages: 10,000 idle connections to a real node
// process each send one message at the same instant, so the node's poller
// wakes for all of them at once; every one is echoed, intact, to the
// connection that sent it. The node runs as its own (non-race) process:
// 10,000 sockets on each side do not fit one process's 20,000 files, and
// the race detector allows fewer live goroutines than a burst like this
// may briefly start.
func TestSimultaneousMessages(t *testing.T) {
	const conns = 10000
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := localcluster.BuildBinaries(ctx, dir); err != nil {
		t.Fatal(err)
	}
	_, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := token.WriteKeyPair(filepath.Join(dir, "signing.key"), filepath.Join(keys, "signing.pub"), priv); err != nil {
		t.Fatal(err)
	}
	signer := token.NewSigner(priv).WithTTL(5 * time.Minute)
	addr := "127.0.0.1:" + strconv.Itoa(probe.LoopbackPort(t))
	node := exec.CommandContext(ctx, filepath.Join(dir, "wsdirect-node"),
		"-name", "burst", "-bind", addr, "-gossip-bind", "127.0.0.1:0", "-dev",
		"-auth-keys", keys, "-token-leeway", "0s", "-rebalance=false",
		"-max-conns", strconv.Itoa(conns+100), "-max-conns-per-user", "0", "-log-level", "warn")
	node.Stdout, node.Stderr = os.Stderr, os.Stderr
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = node.Process.Kill()
		_ = node.Wait()
	})
	probe.Until(t, 60*time.Second, "node ready", func() error {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return probe.Equal("readyz status", resp.StatusCode, http.StatusOK)
	})

	// Connect, 16 at a time.
	ws := make([]*websocket.Conn, conns)
	t.Cleanup(func() {
		for _, c := range ws {
			if c != nil {
				c.Close()
			}
		}
	})
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 256, WriteBufferSize: 256}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < conns; i += 16 {
				tok, _, err := signer.Mint(fmt.Sprintf("user-%d", i), "burst")
				if err != nil {
					errs <- err
					return
				}
				c, _, err := d.DialContext(ctx, "ws://"+addr+wire.WSPath+"?"+wire.TokenQueryParam+"="+url.QueryEscape(tok), nil)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				ws[i] = c
			}
		}(w)
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	// Every message is written before any echo is read: 8 writers, each
	// through its share of the connections as fast as it can.
	msg := func(i int) string { return fmt.Sprintf("message %d from connection %d", i*7919%conns, i) }
	start := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-start
			for i := w; i < conns; i += 8 {
				_ = ws[i].SetWriteDeadline(time.Now().Add(30 * time.Second))
				if err := ws[i].WriteMessage(websocket.TextMessage, []byte(msg(i))); err != nil {
					errs <- fmt.Errorf("write %d: %w", i, err)
					return
				}
			}
		}(w)
	}
	close(start)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	for i, c := range ws {
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		mt, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if mt != websocket.TextMessage || string(got) != msg(i) {
			t.Fatalf("connection %d got %q (type %d), want %q", i, got, mt, msg(i))
		}
	}
	// None was dropped on the way: the node still holds every connection.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("\nwsdirect_node_connections %d\n", conns)
	if !strings.Contains(string(body), want) {
		t.Fatalf("the node's metrics do not say %q", strings.TrimSpace(want))
	}
}
