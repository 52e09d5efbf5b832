package service

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cinet/cinet/broker/jobs"
)

// metrics are the broker's Prometheus metrics: jobs by state, match
// latency, settlement lag and the audit log's size, with the Go runtime's.
type metrics struct {
	reg        *prometheus.Registry
	matchTime  prometheus.Histogram
	settleLag  prometheus.Histogram
	refused    *prometheus.CounterVec
	jobsDesc   *prometheus.Desc
	logDesc    *prometheus.Desc
	offersDesc *prometheus.Desc
	pendDesc   *prometheus.Desc
	s          *Service
}

func newMetrics(s *Service) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		matchTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cinet_match_duration_seconds", Help: "Time to match a job against the offer book.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		settleLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cinet_settlement_lag_seconds", Help: "Time from a placement's end to its usage being settled.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cinet_api_refused_total",
			Help: "Connections and requests the API refused, by reason: connections, connections_per_address, rate_anonymous, rate_principal, unauthenticated, forbidden, too_large.",
		}, []string{"reason"}),
		jobsDesc:   prometheus.NewDesc("cinet_jobs", "Jobs by state.", []string{"state"}, nil),
		logDesc:    prometheus.NewDesc("cinet_audit_log_entries", "Entries in the audit log.", nil, nil),
		offersDesc: prometheus.NewDesc("cinet_offers", "Offers in the book.", nil, nil),
		pendDesc: prometheus.NewDesc("cinet_usage_deliveries_pending",
			"Usage records of forwarded placements not yet taken in: as the home broker (side=home: ended, record not received) and as the executing broker (side=executing: signed, not acknowledged).", []string{"side"}, nil),
		s: s,
	}
	m.reg.MustRegister(m.matchTime, m.settleLag, m.refused, m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Refused counts a connection or request the API refused.
func (m *metrics) Refused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// Matched implements jobs.Observer.
func (m *metrics) Matched(d time.Duration) { m.matchTime.Observe(d.Seconds()) }

// Settled implements jobs.Observer.
func (m *metrics) Settled(lag time.Duration) { m.settleLag.Observe(lag.Seconds()) }

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.jobsDesc
	ch <- m.logDesc
	ch <- m.offersDesc
	ch <- m.pendDesc
}

// Collect implements prometheus.Collector: it reads the stores on scrape.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if counts, err := m.s.Jobs.Counts(ctx); err == nil {
		for _, st := range jobs.States {
			ch <- prometheus.MustNewConstMetric(m.jobsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
		}
	}
	if n, err := m.s.Settler.LogSize(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(m.logDesc, prometheus.GaugeValue, float64(n))
	}
	ch <- prometheus.MustNewConstMetric(m.offersDesc, prometheus.GaugeValue, float64(m.s.Book.Len()))
	if active, err := m.s.Jobs.Active(ctx); err == nil {
		home, executing := 0, 0
		self := m.s.Key.ID().String()
		for _, j := range active {
			for _, a := range j.Attempts {
				switch {
				case j.Home != "" && a.Settled && a.Record != "" && !a.Delivered:
					executing++
				case j.Home == "" && a.Broker != self && a.Ended() && !a.Settled:
					home++
				}
			}
		}
		ch <- prometheus.MustNewConstMetric(m.pendDesc, prometheus.GaugeValue, float64(home), "home")
		ch <- prometheus.MustNewConstMetric(m.pendDesc, prometheus.GaugeValue, float64(executing), "executing")
	}
}

var _ jobs.Observer = (*metrics)(nil)
