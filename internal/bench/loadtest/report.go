package loadtest

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run, in one process or merged over workers.
type Report struct {
	Workers   int `json:"workers"`
	Target    int `json:"target"`
	Connected int `json:"connected"`
	// Dropped counts connections that ended before the run closed them.
	Dropped int `json:"dropped"`

	ConnectStart time.Time `json:"connect_start"`
	ConnectEnd   time.Time `json:"connect_end"`
	// ConnectRate is successful connections per second over the connect
	// phase (first start to last finish, across workers).
	ConnectRate float64 `json:"connect_rate"`

	// Auth is the auth request, Upgrade the WebSocket handshake with the
	// node, Handshake both together (per connection).
	Auth      *Histogram `json:"auth"`
	Upgrade   *Histogram `json:"upgrade"`
	Handshake *Histogram `json:"handshake"`
	RTT       *Histogram `json:"rtt"`

	MsgsSent       int64   `json:"msgs_sent"`
	MsgsReceived   int64   `json:"msgs_received"`
	MessageSeconds float64 `json:"message_seconds,omitempty"`

	// Nodes counts connections per node id.
	Nodes map[string]int `json:"nodes"`
	// Errors counts failures by ErrorKind.
	Errors map[string]int `json:"errors"`
	// ErrorSamples holds the first error message of each kind, to tell
	// what "other" was.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`

	// ClientRSSBytes is the bench's own resident memory after the connect
	// phase (summed over workers).
	ClientRSSBytes int64 `json:"client_rss_bytes"`

	// NodeTLSResumed counts connections whose TLS handshake with the node
	// resumed a session (wss:// only).
	NodeTLSResumed int `json:"node_tls_resumed,omitempty"`
}

// NewReport returns an empty report.
func NewReport() *Report {
	return &Report{
		Auth: NewHistogram(), Upgrade: NewHistogram(), Handshake: NewHistogram(), RTT: NewHistogram(),
		Nodes: map[string]int{}, Errors: map[string]int{},
	}
}

func (r *Report) addError(kind string, n int) {
	if n > 0 {
		r.Errors[kind] += n
	}
}

// addErrorSample counts one failure and keeps the first message of its
// kind.
func (r *Report) addErrorSample(kind string, err error) {
	r.addError(kind, 1)
	if r.ErrorSamples == nil {
		r.ErrorSamples = map[string]string{}
	}
	if _, ok := r.ErrorSamples[kind]; !ok {
		r.ErrorSamples[kind] = err.Error()
	}
}

// Merge adds a worker's report to r. The connect window becomes the union
// of both windows, and the rate is recomputed over it.
func (r *Report) Merge(o *Report) {
	if r.Workers == 0 || r.ConnectStart.IsZero() || (!o.ConnectStart.IsZero() && o.ConnectStart.Before(r.ConnectStart)) {
		r.ConnectStart = o.ConnectStart
	}
	if o.ConnectEnd.After(r.ConnectEnd) {
		r.ConnectEnd = o.ConnectEnd
	}
	r.Workers += o.Workers
	r.Target += o.Target
	r.Connected += o.Connected
	r.Dropped += o.Dropped
	r.NodeTLSResumed += o.NodeTLSResumed
	r.Auth.Merge(o.Auth)
	r.Upgrade.Merge(o.Upgrade)
	r.Handshake.Merge(o.Handshake)
	r.RTT.Merge(o.RTT)
	r.MsgsSent += o.MsgsSent
	r.MsgsReceived += o.MsgsReceived
	if o.MessageSeconds > r.MessageSeconds {
		r.MessageSeconds = o.MessageSeconds
	}
	for k, v := range o.Nodes {
		r.Nodes[k] += v
	}
	for k, v := range o.Errors {
		r.Errors[k] += v
	}
	for k, v := range o.ErrorSamples {
		if r.ErrorSamples == nil {
			r.ErrorSamples = map[string]string{}
		}
		if _, ok := r.ErrorSamples[k]; !ok {
			r.ErrorSamples[k] = v
		}
	}
	r.ClientRSSBytes += o.ClientRSSBytes
	if el := r.ConnectEnd.Sub(r.ConnectStart).Seconds(); el > 0 {
		r.ConnectRate = float64(r.Connected) / el
	}
}

// Balance returns the largest per-node count divided by the mean (1.0 is
// perfect), over the nodes that appear in counts.
func Balance(counts map[string]int) (maxOverMean float64) {
	if len(counts) == 0 {
		return 0
	}
	total, max := 0, 0
	for _, c := range counts {
		total += c
		if c > max {
			max = c
		}
	}
	if total == 0 {
		return 0
	}
	return float64(max) / (float64(total) / float64(len(counts)))
}

// WriteTable prints r for people.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "connections\t%d of %d (workers: %d, dropped during hold: %d)\n", r.Connected, r.Target, r.Workers, r.Dropped)
	fmt.Fprintf(tw, "connect rate\t%.0f conns/s over %v\n", r.ConnectRate, r.ConnectEnd.Sub(r.ConnectStart).Round(time.Millisecond))
	if r.ClientRSSBytes > 0 && r.Connected > 0 {
		fmt.Fprintf(tw, "client memory\t%s RSS (%.1f KiB per connection)\n", bytesStr(r.ClientRSSBytes), float64(r.ClientRSSBytes)/1024/float64(r.Connected))
	}
	if r.NodeTLSResumed > 0 {
		fmt.Fprintf(tw, "TLS resumed\t%d of %d node handshakes\n", r.NodeTLSResumed, r.Connected)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "latency\tcount\tp50\tp99\tmax")
	row := func(name string, h *Histogram) {
		if h.Count() == 0 {
			return
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%v\n", name, h.Count(), roundDur(h.Quantile(0.5)), roundDur(h.Quantile(0.99)), roundDur(h.Max()))
	}
	row("auth request", r.Auth)
	row("ws upgrade", r.Upgrade)
	row("handshake (both)", r.Handshake)
	row("message rtt", r.RTT)
	tw.Flush()
	if r.MsgsSent > 0 {
		fmt.Fprintf(w, "messages: %d sent, %d echoed in %.1fs\n", r.MsgsSent, r.MsgsReceived, r.MessageSeconds)
	}
	fmt.Fprintln(w)
	WriteDistribution(w, r.Nodes)
	if len(r.Errors) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "error\tcount\tfirst seen")
		for _, k := range sortedKeys(r.Errors) {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", k, r.Errors[k], r.ErrorSamples[k])
		}
		tw.Flush()
	}
}

// WriteDistribution prints connections per node with their share and the
// max/mean balance.
func WriteDistribution(w io.Writer, counts map[string]int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	total := 0
	for _, c := range counts {
		total += c
	}
	fmt.Fprintln(tw, "node\tconnections\tshare\t")
	for _, k := range sortedKeys(counts) {
		share := 0.0
		if total > 0 {
			share = 100 * float64(counts[k]) / float64(total)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t\n", k, counts[k], share)
	}
	tw.Flush()
	fmt.Fprintf(w, "nodes: %d, total: %d, max/mean: %.3f\n", len(counts), total, Balance(counts))
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d
}

func bytesStr(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
