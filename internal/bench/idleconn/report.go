package idleconn

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// WriteTable prints, for every server at its full count, RSS per
// connection (raw and scavenged), CPU per accept, connect rate and kernel
// slab growth per connection, with each figure's ratio to the first server;
// then every server's RSS per connection at the marks of the sweep.
func (r *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%d CPUs, %d client processes, connect rate target %.0f/s", r.CPUs, r.Workers, r.Rate)
	if r.OldRev != "" {
		fmt.Fprintf(w, ", old node from %s", r.OldRev)
	}
	fmt.Fprintln(w)
	if len(r.Servers) == 0 {
		return
	}
	base := &r.Servers[0]
	type col struct {
		name string
		get  func(*ServerResult) float64
		f    string
	}
	cols := []col{
		{"conns", func(s *ServerResult) float64 { return float64(s.Held) }, "%.0f"},
		{"RSS B/conn", func(s *ServerResult) float64 { return s.RawPerConn(s.Last()) }, "%.0f"},
		{"scavenged B/conn", func(s *ServerResult) float64 { return s.ScavengedPerConn(s.Last()) }, "%.0f"},
		{"CPU us/accept", func(s *ServerResult) float64 { return float64(s.CPUPerAccept()) / float64(time.Microsecond) }, "%.0f"},
		{"conns/s", func(s *ServerResult) float64 { return s.ConnectRate() }, "%.0f"},
		{"kernel B/conn", func(s *ServerResult) float64 { return s.Last().Kernel.Floor() }, "%.0f"},
	}
	fmt.Fprintf(w, "\n%-14s", "server")
	for _, c := range cols {
		fmt.Fprintf(w, " %16s", c.name)
	}
	fmt.Fprintf(w, "  %s\n", "load")
	for i := range r.Servers {
		s := &r.Servers[i]
		fmt.Fprintf(w, "%-14s", s.Server)
		for _, c := range cols {
			v := fmt.Sprintf(c.f, c.get(s))
			if i > 0 && c.name != "conns" {
				if b := c.get(base); b != 0 {
					v += fmt.Sprintf(" (%.2fx)", c.get(s)/b)
				}
			}
			fmt.Fprintf(w, " %16s", v)
		}
		fmt.Fprintf(w, "  %.2f-%.2f\n", s.LoadBefore, s.LoadAfter)
	}
	fmt.Fprintf(w, "(ratios to %s; kernel: the socket caches' objects in use, both ends of each loopback connection)\n", base.Server)

	fmt.Fprintln(w, "\nkernel memory growth per connection, both ends (B): objects in use by cache; /proc/meminfo Slab:")
	for i := range r.Servers {
		s := &r.Servers[i]
		k := s.Last().Kernel
		if k.Caches == nil {
			fmt.Fprintf(w, "  %-14s /proc/slabinfo not readable; Slab %.0f\n", s.Server, k.Slab)
			continue
		}
		names := make([]string, 0, len(k.Caches))
		for n := range k.Caches {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.0f", n, k.Caches[n]))
		}
		fmt.Fprintf(w, "  %-14s %s; sum %.0f; Slab %.0f\n", s.Server, strings.Join(parts, ", "), k.CachesSum, k.Slab)
	}

	fmt.Fprintln(w, "\nRSS growth per connection along the sweep, raw / scavenged (B):")
	var all []int
	seen := map[int]bool{}
	for _, s := range r.Servers {
		for _, m := range s.Marks {
			if !seen[m.Conns] {
				seen[m.Conns] = true
				all = append(all, m.Conns)
			}
		}
	}
	sort.Ints(all)
	fmt.Fprintf(w, "%-14s", "server")
	for _, n := range all {
		fmt.Fprintf(w, " %11d", n)
	}
	fmt.Fprintln(w)
	for i := range r.Servers {
		s := &r.Servers[i]
		fmt.Fprintf(w, "%-14s", s.Server)
		for _, n := range all {
			cell := "-"
			for _, m := range s.Marks {
				if m.Conns == n {
					cell = fmt.Sprintf("%.0f/%.0f", s.RawPerConn(m), s.ScavengedPerConn(m))
				}
			}
			fmt.Fprintf(w, " %11s", cell)
		}
		fmt.Fprintln(w)
	}
}
