package server

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/daguq/daguq/queuestore"
)

// scrapeTimeout bounds one read of the store's metrics.
const scrapeTimeout = 10 * time.Second

// newRegistry builds the registry /metrics serves: the store's metrics read
// at scrape time, the request counter, build info, and the Go runtime and
// process metrics.
func (s *Server) newRegistry() (*prometheus.Registry, *prometheus.CounterVec) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "daguq_http_requests_total",
		Help: "HTTP requests answered by daguq serve, by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "daguq_build_info",
		Help: "Always 1: the daguq version, the Go version it was built with, and the storage backend.",
	}, []string{"version", "goversion", "backend"})
	build.WithLabelValues(s.opts.Version, runtime.Version(), s.opts.Backend).Set(1)
	reg.MustRegister(newStoreCollector(s.store), requests, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, requests
}

// metricsHandler serves the registry in the Prometheus text format.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog:            promLogger{s},
		MaxRequestsInFlight: 4,
		Timeout:             scrapeTimeout + 5*time.Second,
	})
}

// promLogger puts the metrics handler's errors on one line of the log.
type promLogger struct{ s *Server }

func (l promLogger) Println(v ...any) {
	l.s.logf("metrics: %s", strings.Join(strings.Fields(fmt.Sprint(v...)), " "))
}

// storeCollector reads every queue's counts and counters from the store
// at scrape time. The counters and the wait histogram live in the database,
// written by every process that enqueues, claims or settles, so the values
// are the database's totals, not this process's.
type storeCollector struct {
	store Store

	messages, oldest, paused, limit, leases      *prometheus.Desc
	enqueued, claimed, settled, redriven, purged *prometheus.Desc
	wait                                         *prometheus.Desc
}

func newStoreCollector(store Store) *storeCollector {
	q := []string{"queue"}
	return &storeCollector{
		store:    store,
		messages: prometheus.NewDesc("daguq_messages", "Messages in the queue by state: ready, delayed, in_flight, dead.", []string{"queue", "state"}, nil),
		oldest:   prometheus.NewDesc("daguq_queue_oldest_ready_age_seconds", "How long the oldest ready message has been ready; 0 when none is.", q, nil),
		paused:   prometheus.NewDesc("daguq_queue_paused", "1 when the queue is paused (claims take nothing), else 0.", q, nil),
		limit:    prometheus.NewDesc("daguq_queue_in_flight_limit", "The most leases (batches being handled) the queue allows at once; 0: no limit.", q, nil),
		leases:   prometheus.NewDesc("daguq_leases", "Live leases of the queue: batches being handled now.", q, nil),
		enqueued: prometheus.NewDesc("daguq_messages_enqueued_total", "Messages stored by enqueues (duplicates not counted).", q, nil),
		claimed:  prometheus.NewDesc("daguq_messages_claimed_total", "Deliveries: messages handed out by claims.", q, nil),
		settled:  prometheus.NewDesc("daguq_messages_settled_total", "Deliveries settled, by outcome: acked, retried, dead, expired, released.", []string{"queue", "outcome"}, nil),
		redriven: prometheus.NewDesc("daguq_messages_redriven_total", "Dead messages sent back to ready by redrive.", q, nil),
		purged:   prometheus.NewDesc("daguq_messages_purged_total", "Messages deleted by purges.", q, nil),
		wait:     prometheus.NewDesc("daguq_message_wait_seconds", "Time from enqueue to ack of acked messages.", q, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.messages, c.oldest, c.paused, c.limit, c.leases,
		c.enqueued, c.claimed, c.settled, c.redriven, c.purged, c.wait} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	metrics, err := c.store.Metrics(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.messages, fmt.Errorf("read the store's metrics: %w", err))
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, m := range metrics {
		q := m.Queue
		gauge(c.messages, float64(m.Ready), q, "ready")
		gauge(c.messages, float64(m.Delayed), q, "delayed")
		gauge(c.messages, float64(m.InFlight), q, "in_flight")
		gauge(c.messages, float64(m.Dead), q, "dead")
		oldest := 0.0
		if m.Ready > 0 {
			oldest = m.OldestReadyAge.Seconds()
		}
		gauge(c.oldest, oldest, q)
		paused := 0.0
		if m.Paused {
			paused = 1
		}
		gauge(c.paused, paused, q)
		gauge(c.limit, float64(m.InFlightLimit), q)
		gauge(c.leases, float64(m.Leases), q)
		counter(c.enqueued, m.Enqueued, q)
		counter(c.claimed, m.Claimed, q)
		for _, o := range queuestore.Outcomes {
			counter(c.settled, m.Settled[o], q, string(o))
		}
		counter(c.redriven, m.Redriven, q)
		counter(c.purged, m.Purged, q)
		buckets := make(map[float64]uint64, len(queuestore.WaitBuckets))
		for i, le := range queuestore.WaitBuckets {
			if i < len(m.WaitCounts) {
				buckets[le] = uint64(max(m.WaitCounts[i], 0))
			}
		}
		ch <- prometheus.MustNewConstHistogram(c.wait, uint64(max(m.WaitCount, 0)), m.WaitSum.Seconds(), buckets, q)
	}
}
