// Package scavenge is the control socket through which the idle-connection
// harness (internal/bench/idleconn) asks a server process it measures to
// run the garbage collector and return freed memory to the OS
// (runtime.GC, debug.FreeOSMemory), so that its RSS shows the steady state
// of an idle server rather than handshake garbage the background scavenger
// has not yet returned.
//
// The reference echo servers call Listen themselves. wsdirect-node has no
// such request (the product need not answer one), so the harness builds the
// node it measures with one more file in its main package (see Hook), which
// calls ListenFromEnv at start: the node's code is otherwise unchanged, and
// a node built from an older commit gets the same hook. This file must
// therefore use the standard library only: it is compiled into that
// commit's tree as it is (source.go, which embeds it, is not).
//
// The protocol is one line per request on a Unix socket: "scavenge" answers
// "ok goroutines=N heap_inuse=B stack_inuse=B sys=B" after the collection;
// "stats" answers the same line without collecting.
package scavenge

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// EnvSocket names the environment variable with the control socket's path.
const EnvSocket = "WSDIRECT_BENCH_SCAVENGE_SOCKET"

// ListenFromEnv serves the control socket at $WSDIRECT_BENCH_SCAVENGE_SOCKET
// when it is set; a failure is printed to stderr and leaves the process
// running without it (the harness then reports that it cannot scavenge).
func ListenFromEnv() {
	path := os.Getenv(EnvSocket)
	if path == "" {
		return
	}
	if err := Listen(path); err != nil {
		fmt.Fprintln(os.Stderr, "scavenge:", err)
	}
}

// Listen serves the control socket at path until the process exits.
func Listen(path string) error {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return nil
}

func serve(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		switch sc.Text() {
		case "scavenge":
			runtime.GC()
			debug.FreeOSMemory()
		case "stats":
		default:
			fmt.Fprintf(c, "error unknown request %q\n", sc.Text())
			continue
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(c, "ok goroutines=%d heap_inuse=%d stack_inuse=%d sys=%d\n",
			runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse, ms.Sys)
	}
}

// Request sends one request ("scavenge" or "stats") to the socket at path
// and returns the answer after "ok ".
func Request(path, req string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(c, req); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSpace(line)
	stats, ok := strings.CutPrefix(line, "ok ")
	if !ok {
		return "", errors.New("scavenge: " + line)
	}
	return stats, nil
}
