package metrics

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handshake results: the values of p2pd_handshakes_total's result label
// (transport's Handshake* constants). Any other result counts as
// bad_message.
var handshakeResults = []string{"ok", "untrusted", "bad_message", "timeout", "overloaded"}

// handshakeBuckets are p2pd_handshake_duration_seconds's buckets: a
// handshake takes one round trip, from well under a millisecond on a LAN
// to seconds on a bad path.
var handshakeBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics is p2pd's registry: the handshake series it is told about and
// the Source it reads at scrape time. Its methods are safe for concurrent
// use.
type Metrics struct {
	reg        *prometheus.Registry
	log        *slog.Logger
	handshakes *prometheus.CounterVec
	hsDuration prometheus.Histogram

	once sync.Once // SetSource registers the source once
}

// New makes the registry with the build info, the handshake series at
// zero, and the Go runtime and process collectors. log, if not nil, hears
// of series that failed to collect.
func New(build Build, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: log,
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2pd_handshakes_total",
			Help: "Noise handshakes, inbound and outbound, by result: ok, untrusted, bad_message, timeout, overloaded.",
		}, []string{"result"}),
		hsDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "p2pd_handshake_duration_seconds",
			Help:    "How long the Noise exchange of successful handshakes took.",
			Buckets: handshakeBuckets,
		}),
	}
	for _, r := range handshakeResults {
		m.handshakes.WithLabelValues(r)
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "p2pd_build_info",
		Help:        "Always 1; the labels say which p2pd this is.",
		ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.Commit, "goversion": build.GoVersion},
	})
	info.Set(1)
	m.reg.MustRegister(m.handshakes, m.hsDuration, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveHandshake counts a handshake that ended with result after d; d
// goes into the histogram for successful ones. It fits transport's
// Config.OnHandshake.
func (m *Metrics) ObserveHandshake(result string, d time.Duration) {
	known := false
	for _, r := range handshakeResults {
		known = known || r == result
	}
	if !known {
		result = "bad_message"
	}
	m.handshakes.WithLabelValues(result).Inc()
	if result == "ok" {
		m.hsDuration.Observe(d.Seconds())
	}
}

// SetSource makes every later scrape read src. Only the first call counts.
func (m *Metrics) SetSource(src Source) {
	m.once.Do(func() { m.reg.MustRegister(sourceCollector{src}) })
}

// Handler serves the registry in the Prometheus exposition formats. A
// series that fails to collect is logged and left out; the others are
// served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            errorLog{m.log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// errorLog is promhttp's Logger over slog.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) {
	l.log.Warn("metrics: scrape", "err", slog.AnyValue(v))
}
