package localcloud

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

const (
	tailLines   = 40
	maxLineSize = 8 << 10
)

// console is an instance's console log: every line cloud-init and the units print, prefixed
// with its source, in <instance dir>/console.log (kept after termination, like EC2's console
// output), plus the last lines of each source in memory for Status.
type console struct {
	mu    sync.Mutex
	f     *os.File
	tails map[string][]string
}

func openConsole(path string) (*console, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &console{f: f, tails: map[string][]string{}}, nil
}

func (c *console) line(source, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil {
		fmt.Fprintf(c.f, "%s %s: %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), source, text)
	}
	t := append(c.tails[source], text)
	if len(t) > tailLines {
		t = t[len(t)-tailLines:]
	}
	c.tails[source] = t
}

func (c *console) printf(source, format string, args ...any) {
	c.line(source, fmt.Sprintf(format, args...))
}

// tail returns the last lines of a source.
func (c *console) tail(source string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.tails[source]...)
}

func (c *console) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// writer returns an io.Writer for a process's output that logs whole lines under source.
func (c *console) writer(source string) io.Writer { return &lineWriter{c: c, source: source} }

type lineWriter struct {
	c      *console
	source string
	mu     sync.Mutex
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > maxLineSize {
				w.c.line(w.source, string(w.buf))
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.c.line(w.source, string(bytes.TrimRight(w.buf[:i], "\r")))
		w.buf = w.buf[i+1:]
	}
}
