package scalerun

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
)

// Report is the outcome of a scale run.
type Report struct {
	// What was asked.
	Nodes       int     `json:"nodes"`
	Auths       int     `json:"auths"`
	Workers     int     `json:"workers"`
	Target      int     `json:"target"`
	MaxConns    int     `json:"max_conns"`
	Rate        float64 `json:"rate"`
	Concurrency int     `json:"concurrency"`
	SourceIPs   int     `json:"source_ips"`
	HoldSeconds float64 `json:"hold_seconds"`

	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// ClusterDir holds the cluster's logs when it was kept.
	ClusterDir string `json:"cluster_dir,omitempty"`

	// Load is the clients' merged report: connect rate, handshake latency,
	// per-node counts as assigned, errors by kind.
	Load *loadtest.Report `json:"load"`

	// Held is the largest total of connections the nodes reported at one
	// sample, each from its own /metrics gauge; HeldAt is when, in seconds
	// after the clients started. AuthHeld is the total auth listed in GET
	// /v1/nodes at that sample (gossiped, so it lags, and on a starved
	// machine it misses nodes gossip marked suspect).
	Held     int     `json:"held"`
	HeldAt   float64 `json:"held_at_seconds"`
	AuthHeld int     `json:"auth_held"`

	// NodeFigures are per node, at the sample of Held.
	NodeFigures []NodeFigures `json:"node_figures"`
	MaxPerNode  int           `json:"max_per_node"`
	MeanPerNode float64       `json:"mean_per_node"`
	MaxOverMean float64       `json:"max_over_mean"`
	// NodeBytesPerConn is the nodes' summed RSS growth over their summed
	// connections.
	NodeBytesPerConn float64 `json:"node_bytes_per_conn"`
	// ClientRSSAtPeak is the workers' summed RSS at the sample of Held, and
	// ClientBytesPerConn that over Held (it includes each worker's runtime).
	ClientRSSAtPeak    int64   `json:"client_rss_at_peak_bytes"`
	ClientBytesPerConn float64 `json:"client_bytes_per_conn"`

	AuthProcs   []ProcFigures `json:"auth_procs"`
	WorkerProcs []ProcFigures `json:"worker_procs"`
	Self        ProcFigures   `json:"self"`

	// Host settings (read, never changed) and kernel counters at the start,
	// at their peak (lowest for MemAvailable) and at the end.
	Host     HostLimits  `json:"host"`
	NetStart NetCounters `json:"net_start"`
	NetPeak  NetCounters `json:"net_peak"`
	NetEnd   NetCounters `json:"net_end"`

	// Limits says what was hit, or that nothing was.
	Limits []string `json:"limits"`

	Samples      []Sample `json:"samples"`
	SampleErrors []string `json:"sample_errors,omitempty"`
}

// ProcFigures are one process's file descriptors and memory.
type ProcFigures struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// NoFile is the RLIMIT_NOFILE the process ran with (Go raises the soft
	// limit to the hard one at start-up; here both are 20,000).
	NoFile NoFile `json:"nofile"`
	// Base*: before any client connected (for a worker: when first seen).
	// FDs/RSS: at the sample of the peak. Peak*: the largest sampled.
	BaseFDs int   `json:"base_fds"`
	FDs     int   `json:"fds"`
	PeakFDs int   `json:"peak_fds"`
	BaseRSS int64 `json:"base_rss_bytes"`
	RSS     int64 `json:"rss_bytes"`
	PeakRSS int64 `json:"peak_rss_bytes"`
}

// NodeFigures are one node's figures at the peak sample.
type NodeFigures struct {
	ProcFigures
	// Connections the node reported itself (/metrics), AuthView what auth
	// listed for it, and Cap its cap as auth lists it.
	Connections int `json:"connections"`
	AuthView    int `json:"auth_view"`
	Cap         int `json:"cap"`
	// BytesPerConn is (RSS - BaseRSS) / Connections.
	BytesPerConn float64 `json:"bytes_per_conn"`
	// FDCeiling is how many client connections the node's file limit
	// leaves room for: the soft limit minus the descriptors it holds with
	// no client (listener, gossip sockets, epoll, log files, ...).
	FDCeiling int `json:"fd_ceiling"`
}

// Sample is one round of sampling.
type Sample struct {
	// Elapsed is seconds since the clients started.
	Elapsed float64 `json:"t"`
	// Held sums the nodes' own connection gauges, AuthHeld the counts auth
	// lists.
	Held     int   `json:"held"`
	AuthHeld int   `json:"auth_held"`
	NodeRSS  int64 `json:"node_rss_bytes"`
	// WorkerProcs, ClientRSS and ClientFDs sum over the worker processes.
	WorkerProcs int         `json:"worker_procs"`
	ClientRSS   int64       `json:"client_rss_bytes"`
	ClientFDs   int         `json:"client_fds"`
	Net         NetCounters `json:"net"`
}

func sortProcs(ps []ProcFigures) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].PID < ps[j].PID })
}

// atFileLimit reports whether a process used (nearly) all the descriptors
// its soft limit allows: accept and dial fail with EMFILE there.
func (p ProcFigures) atFileLimit() bool {
	return p.NoFile.Soft > 0 && int64(p.PeakFDs) >= p.NoFile.Soft-2
}

// explain fills r.Limits: what was hit, and what that means.
func (r *Report) explain() {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	l := r.Load
	if l != nil {
		if failed := l.Target - l.Connected; failed > 0 {
			add("%d of %d connects failed: %s", failed, l.Target, kinds(l.Errors))
		}
		for kind, n := range l.Errors {
			switch {
			case kind == "addr_not_available":
				ports := r.Host.LocalPortRange[1] - r.Host.LocalPortRange[0] + 1
				add("EADDRNOTAVAIL x%d: ephemeral ports ran out (ip_local_port_range %d-%d = %d ports per source IP and destination; %d source IPs)",
					n, r.Host.LocalPortRange[0], r.Host.LocalPortRange[1], ports, r.SourceIPs)
			case kind == "too_many_open_files":
				add("EMFILE/ENFILE x%d in the client workers: their RLIMIT_NOFILE", n)
			case strings.Contains(kind, "full") || strings.HasPrefix(kind, "auth_503"):
				add("%s x%d: node cap reached (-max-conns %d)", kind, n, r.MaxConns)
			case kind == "timeout":
				add("timeout x%d: handshakes not finished in time (a node at its file limit cannot accept; a loaded machine is slow)", n)
			case strings.HasPrefix(kind, "dropped"):
				add("%s x%d: connections lost during the hold (1006: closed without a close frame, e.g. a node's pong deadline passing on a starved machine)", kind, n)
			}
		}
	}
	procs := append(append(append([]ProcFigures{}, r.AuthProcs...), r.WorkerProcs...), r.Self)
	for _, n := range r.NodeFigures {
		procs = append(procs, n.ProcFigures)
		if n.Cap > 0 && n.Connections >= n.Cap {
			add("%s at its cap: %d of -max-conns %d", n.Name, n.Connections, n.Cap)
		}
	}
	largest := ProcFigures{}
	for _, p := range procs {
		if p.atFileLimit() {
			add("%s reached its file limit: %d descriptors of soft RLIMIT_NOFILE %d (hard %d); %d were in use before any client",
				p.Name, p.PeakFDs, p.NoFile.Soft, p.NoFile.Hard, p.BaseFDs)
		}
		if p.PeakFDs > largest.PeakFDs {
			largest = p
		}
	}
	if d := r.NetPeak.ListenOverflows - r.NetStart.ListenOverflows; d > 0 {
		add("accept queues overflowed %d times (TcpExt ListenOverflows, host-wide; somaxconn %d)", d, r.Host.Somaxconn)
	}
	if r.Host.TCPMem[1] > 0 && r.NetPeak.TCPMemPages >= r.Host.TCPMem[1] {
		add("TCP memory under pressure: %d pages (tcp_mem %v)", r.NetPeak.TCPMemPages, r.Host.TCPMem)
	}
	if r.Host.FileMax > 0 && r.NetPeak.OpenFiles*10 >= r.Host.FileMax*9 {
		add("open files near fs.file-max: %d of %d", r.NetPeak.OpenFiles, r.Host.FileMax)
	}
	if r.Host.MemTotal > 0 && r.NetPeak.MemAvailable*10 < r.Host.MemTotal {
		add("memory low: %s available of %s", mib(r.NetPeak.MemAvailable), mib(r.Host.MemTotal))
	}
	if len(out) == 0 {
		add("no limit hit: %d of %d held", r.Held, r.Target)
	}
	if largest.PeakFDs > 0 {
		add("most descriptors in one process: %s, %d of soft limit %d", largest.Name, largest.PeakFDs, largest.NoFile.Soft)
	}
	add("TCP memory peak %d pages (tcp_mem pressure %d, high %d); sockets in use peak %d; open files peak %d of file-max %d",
		r.NetPeak.TCPMemPages, r.Host.TCPMem[1], r.Host.TCPMem[2], r.NetPeak.TCPInUse, r.NetPeak.OpenFiles, r.Host.FileMax)
	r.Limits = out
}

func kinds(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// WriteTable prints r for people.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "scale run: %d nodes, %d auth, %d workers, target %d (max-conns %d, rate %g/s, concurrency %d, %d source IPs, hold %gs)\n\n",
		r.Nodes, r.Auths, r.Workers, r.Target, r.MaxConns, r.Rate, r.Concurrency, r.SourceIPs, r.HoldSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "held (node side)\t%d of %d, at t=%.0fs (auth listed %d then)\n", r.Held, r.Target, r.HeldAt, r.AuthHeld)
	if l := r.Load; l != nil {
		fmt.Fprintf(tw, "connected (client side)\t%d, dropped during hold %d\n", l.Connected, l.Dropped)
		fmt.Fprintf(tw, "connect rate\t%.0f conns/s over %v\n", l.ConnectRate, l.ConnectEnd.Sub(l.ConnectStart).Round(time.Millisecond))
		if l.Handshake.Count() > 0 {
			fmt.Fprintf(tw, "handshake (auth + upgrade)\tp50 %v, p99 %v, max %v\n",
				l.Handshake.Quantile(0.5).Round(time.Microsecond), l.Handshake.Quantile(0.99).Round(time.Microsecond), l.Handshake.Max().Round(time.Microsecond))
		}
	}
	fmt.Fprintf(tw, "per node\tmax %d, mean %.0f, max/mean %.3f\n", r.MaxPerNode, r.MeanPerNode, r.MaxOverMean)
	fmt.Fprintf(tw, "node memory per connection\t%.2f KiB (RSS growth / connections, all nodes)\n", r.NodeBytesPerConn/1024)
	fmt.Fprintf(tw, "client memory per connection\t%.2f KiB (%s over %d workers, runtime included)\n", r.ClientBytesPerConn/1024, mib(r.ClientRSSAtPeak), len(r.WorkerProcs))
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\tconns\tauth view\tcap\tbase RSS\tRSS\tKiB/conn\tbase fds\tfds\tpeak fds\tnofile soft/hard\tfd ceiling\t")
	for _, n := range r.NodeFigures {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%.2f\t%d\t%d\t%d\t%d/%d\t%d\t\n", n.Name, n.Connections, n.AuthView, n.Cap,
			mib(n.BaseRSS), mib(n.RSS), n.BytesPerConn/1024, n.BaseFDs, n.FDs, n.PeakFDs, n.NoFile.Soft, n.NoFile.Hard, n.FDCeiling)
	}
	tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(tw, "process\tpid\tnofile soft/hard\tbase fds\tpeak fds\tpeak RSS\t")
	for _, p := range append(append(append([]ProcFigures{}, r.AuthProcs...), r.WorkerProcs...), r.Self) {
		fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%d\t%d\t%s\t\n", p.Name, p.PID, p.NoFile.Soft, p.NoFile.Hard, p.BaseFDs, p.PeakFDs, mib(p.PeakRSS))
	}
	tw.Flush()

	h := r.Host
	fmt.Fprintln(w)
	fmt.Fprintln(w, "host limits (read, not changed):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  net.ipv4.ip_local_port_range\t%d %d\n", h.LocalPortRange[0], h.LocalPortRange[1])
	fmt.Fprintf(tw, "  net.core.somaxconn\t%d\n", h.Somaxconn)
	fmt.Fprintf(tw, "  net.ipv4.tcp_max_syn_backlog\t%d\n", h.TCPMaxSynBacklog)
	fmt.Fprintf(tw, "  net.ipv4.tcp_mem (pages)\t%d %d %d\n", h.TCPMem[0], h.TCPMem[1], h.TCPMem[2])
	fmt.Fprintf(tw, "  fs.file-max / fs.nr_open\t%d / %d\n", h.FileMax, h.NrOpen)
	fmt.Fprintf(tw, "  memory\t%s total, %s available at start, %s at lowest\n", mib(h.MemTotal), mib(h.MemAvailable), mib(r.NetPeak.MemAvailable))
	fmt.Fprintf(tw, "  cpus\t%d\n", h.CPUs)
	tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(w, "limits hit:")
	for _, s := range r.Limits {
		fmt.Fprintf(w, "  - %s\n", s)
	}
	if l := r.Load; l != nil && len(l.Errors) > 0 {
		fmt.Fprintf(w, "errors by kind: %s\n", kinds(l.Errors))
	}
	for _, e := range r.SampleErrors {
		fmt.Fprintf(w, "sampling: %s\n", e)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
