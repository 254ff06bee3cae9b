package portceiling

import (
	"bytes"
	"os"
	"sync"
)

// syncBuffer is a bytes.Buffer that a process's output goroutine writes
// while a failure report may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// String returns what has been written (the last 512 KiB to 1 MiB).
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// teeWriter writes a process's output to its log file and to a buffer
// kept in memory for error reports.
type teeWriter struct {
	f   *os.File
	buf *syncBuffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.buf.mu.Lock()
	// Keep at most the last 1 MiB in memory; the file has everything.
	if w.buf.b.Len() > 1<<20 {
		rest := append([]byte(nil), w.buf.b.Bytes()[w.buf.b.Len()-(512<<10):]...)
		w.buf.b.Reset()
		w.buf.b.Write(rest)
	}
	w.buf.b.Write(p)
	w.buf.mu.Unlock()
	return w.f.Write(p)
}
