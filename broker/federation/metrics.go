package federation

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the federation's Prometheus metrics.
type metrics struct {
	peers         prometheus.Gauge
	gossip        *prometheus.CounterVec // by topic, result and reason
	refused       *prometheus.CounterVec // connections refused, by reason
	streamErrors  *prometheus.CounterVec // by protocol and stage
	synced        prometheus.Counter
	reservations  *prometheus.CounterVec // served, by outcome
	dropped       *prometheus.CounterVec // events dropped because a queue was full
	exec          *prometheus.CounterVec // forwarded-placement requests served, by operation and outcome
	statements    *prometheus.CounterVec // clearing statements issued and served, by result
	equivocations prometheus.Counter
	reconnects    prometheus.Counter
	propagation   prometheus.Histogram
	cosigned      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		peers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cinet_federation_peers", Help: "Peers connected."}),
		gossip: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cinet_federation_messages_total",
			Help: "Gossiped and synced messages, by topic or protocol, result (accepted, rejected, ignored) and reason."}, []string{"topic", "result", "reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cinet_federation_refused_connections_total",
			Help: "Connections refused, by reason."}, []string{"reason"}),
		streamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cinet_federation_stream_errors_total",
			Help: "Stream protocol errors, by protocol and stage."}, []string{"protocol", "stage"}),
		synced: prometheus.NewCounter(prometheus.CounterOpts{Name: "cinet_federation_synced_offers_total",
			Help: "Offers pulled from peers by anti-entropy."}),
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cinet_federation_reservations_total",
			Help: "Reservation requests served for peers, by outcome."}, []string{"outcome"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cinet_federation_dropped_total",
			Help: "Events dropped because a queue was full, by queue."}, []string{"queue"}),
		exec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cinet_federation_exec_requests_total",
			Help: "Requests about forwarded placements served for home brokers, by operation and outcome."}, []string{"op", "outcome"}),
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cinet_federation_statements_total",
			Help: "Clearing statements this broker issued (side=issued) and was sent (side=served), by result."}, []string{"side", "result"}),
		equivocations: prometheus.NewCounter(prometheus.CounterOpts{Name: "cinet_federation_equivocations_total",
			Help: "Pairs of inconsistent checkpoints a member signed, as this broker found them."}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cinet_federation_propagation_seconds",
			Help:    "Time from a broker announcement's signing to its arrival by gossip here: gossip's propagation delay, measured on announcements, whose sequence is their signing time.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "cinet_federation_reconnects_total",
			Help: "Connections to members closed because their gossip was not heard (they are dialed again)."}),
		cosigned: prometheus.NewCounter(prometheus.CounterOpts{Name: "cinet_federation_cosignatures_total",
			Help: "Checkpoints of other members' logs this broker cosigned and handed back."}),
	}
	if reg != nil {
		reg.MustRegister(m.peers, m.gossip, m.refused, m.streamErrors, m.synced, m.reservations, m.dropped, m.exec, m.statements, m.equivocations, m.cosigned, m.reconnects, m.propagation)
	}
	return m
}
