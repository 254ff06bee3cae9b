package node

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/readiness"
	"github.com/wsdirect/terraform-provider-wsdirect/token"
)

// Reject reasons besides the token's own (token.Reasons).
const (
	// ReasonFull: the node is at MaxConns.
	ReasonFull = "full"
	// ReasonDraining: the node is draining or shut down.
	ReasonDraining = "draining"
	// ReasonNotReady: the node cannot serve yet (SetNotReady), e.g. it
	// has no valid TLS certificate.
	ReasonNotReady = "not_ready"
	// ReasonBadRequest: not a valid WebSocket handshake.
	ReasonBadRequest = "bad_request"
	// ReasonUpstream: the upstream app could not be dialed.
	ReasonUpstream = "upstream_unavailable"
	// ReasonUserLimit: the user already holds MaxConnsPerUser connections
	// on this node.
	ReasonUserLimit = "user_limit"
)

// Error codes in the JSON body of refusals that are not token rejections
// (those use the token.Reason string).
const (
	CodeNodeFull            = "node_full"
	CodeDraining            = "draining"
	CodeNotReady            = "not_ready"
	CodeBadRequest          = "bad_request"
	CodeUpstreamUnavailable = "upstream_unavailable"
	CodeUnauthorized        = "unauthorized"
	CodeTooManyConnections  = "too_many_connections"
)

type metrics struct {
	conns     prometheus.GaugeFunc
	accepts   prometheus.Counter
	rejects   *prometheus.CounterVec
	drains    prometheus.Counter
	handshake prometheus.Histogram

	rebalanceRounds  prometheus.Counter
	rebalanceMoved   prometheus.Counter
	rebalanceArrived prometheus.Counter
	rebalanceLeft    prometheus.Gauge

	memoryReleases prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, conns func() float64) (*metrics, error) {
	m := &metrics{
		conns: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wsdirect_node_connections",
			Help: "Open WebSocket connections.",
		}, conns),
		accepts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wsdirect_node_accepts_total",
			Help: "WebSocket upgrades accepted.",
		}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsdirect_node_rejects_total",
			Help: "WebSocket upgrades refused, by reason.",
		}, []string{"reason"}),
		drains: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wsdirect_node_drains_total",
			Help: "Drains started.",
		}),
		handshake: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wsdirect_node_handshake_seconds",
			Help:    "Time from request to completed upgrade, token check included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12), // 100µs .. ~2.4s
		}),
		rebalanceRounds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wsdirect_node_rebalance_rounds_total",
			Help: "Rebalance rounds this node started (it was over its share of the cluster's clients).",
		}),
		rebalanceMoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wsdirect_node_rebalance_moved_total",
			Help: "Clients this node closed with the rebalance code (4003) to move them to nodes with fewer.",
		}),
		rebalanceArrived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wsdirect_node_rebalance_arrived_total",
			Help: "Clients accepted with a token marked rebalanced: moved here from another node.",
		}),
		rebalanceLeft: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wsdirect_node_rebalance_to_move",
			Help: "Clients the current rebalance round has still to move (0 between rounds).",
		}),
		memoryReleases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wsdirect_node_memory_releases_total",
			Help: "Times the node returned freed memory to the OS after a burst of connects or disconnects.",
		}),
	}
	// Pre-register every label so dashboards see zeros, not gaps.
	for _, r := range token.Reasons {
		m.rejects.WithLabelValues(string(r))
	}
	for _, r := range []string{ReasonFull, ReasonDraining, ReasonNotReady, ReasonBadRequest, ReasonUpstream, ReasonUserLimit} {
		m.rejects.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.conns, m.accepts, m.rejects, m.drains, m.handshake,
		m.rebalanceRounds, m.rebalanceMoved, m.rebalanceArrived, m.rebalanceLeft, m.memoryReleases} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// A caller-supplied registry may already carry the runtime collectors.
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

// registerPollerMetrics exports the shared poller's figures. They are the
// process's, so nodes sharing a registry share the series.
func registerPollerMetrics(reg *prometheus.Registry, p *readiness.Poller) error {
	err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "wsdirect_node_read_loop_handovers_total",
		Help: fmt.Sprintf("Times a connection's read or write blocked the process's event loop for longer than %s, so that the loop moved on to a new goroutine (a peer that stopped reading, or a message arriving slowly).", readiness.StallAfter),
	}, func() float64 { return float64(p.Handovers()) }))
	var are prometheus.AlreadyRegisteredError
	if err != nil && !errors.As(err, &are) {
		return err
	}
	return nil
}
