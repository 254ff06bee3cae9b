package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const memoryReleases = "wsdirect_node_memory_releases_total"

// waitMetric waits, at most 5 s, for a counter to reach want.
func (f *fixture) waitMetric(name string, want float64) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := f.metric(name, "")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s = %v after 5 s, want %v", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReleaseMemoryAfterBurst(t *testing.T) {
	const after = 100 * time.Millisecond
	f := newFixture(t, func(c *Config) {
		c.ReleaseMemory = ReleaseMemoryConfig{After: after, MinChanges: 20}
	})
	var conns []*websocket.Conn
	for i := 0; i < 19; i++ {
		conns = append(conns, f.mustDial(fmt.Sprintf("user-%d", i)))
	}
	// 19 changes are not a burst, however long the node waits.
	time.Sleep(4 * after)
	if got := f.metric(memoryReleases, ""); got != 0 {
		t.Fatalf("released after 19 of 20 changes: %v releases", got)
	}
	// The 20th makes one; once the count has held still, one release.
	conns = append(conns, f.mustDial("user-19"))
	f.waitMetric(memoryReleases, 1)
	time.Sleep(4 * after)
	if got := f.metric(memoryReleases, ""); got != 1 {
		t.Fatalf("released again with no change since: %v releases", got)
	}
	if !strings.Contains(f.logs.String(), "returned freed memory to the OS") {
		t.Error("the release was not logged")
	}
	// Closing them is a burst of changes too.
	for _, c := range conns {
		c.Close()
	}
	f.waitMetric(memoryReleases, 2)
}

func TestReleaseMemoryOff(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.ReleaseMemory = ReleaseMemoryConfig{After: 0, MinChanges: 1}
	})
	for i := 0; i < 3; i++ {
		f.mustDial(fmt.Sprintf("user-%d", i))
	}
	time.Sleep(300 * time.Millisecond)
	if got := f.metric(memoryReleases, ""); got != 0 {
		t.Fatalf("ReleaseMemory.After = 0 released %v times", got)
	}
}
