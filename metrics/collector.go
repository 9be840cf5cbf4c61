package metrics

import (
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Directions of the byte counters.
const (
	dirReceived = "received"
	dirSent     = "sent"
)

// Descriptions of the series read from a Source at scrape time.
var (
	sessionsDesc = prometheus.NewDesc("p2pd_sessions",
		"Live sessions to peers (one per connected peer), by carrier (quic, tcp, relay) and path (direct, relayed).",
		[]string{"peer", "carrier", "path"}, nil)
	rttDesc = prometheus.NewDesc("p2pd_peer_rtt_seconds",
		"Smoothed round-trip time of the live session to the peer.", []string{"peer"}, nil)
	lostDesc = prometheus.NewDesc("p2pd_peer_packets_lost_total",
		"Packets the live session to the peer declared lost; starts from zero with each new session.", []string{"peer"}, nil)
	sessionBytesDesc = prometheus.NewDesc("p2pd_session_bytes_total",
		"Bytes on the wire of the live session to the peer; starts from zero with each new session.", []string{"peer", "direction"}, nil)
	streamsDesc = prometheus.NewDesc("p2pd_streams_total",
		`Inbound streams by service ("other" for one this node does not have) and result (ok or the refusal's reason).`,
		[]string{"service", "result"}, nil)
	bytesDesc = prometheus.NewDesc("p2pd_bytes_total",
		"Payload bytes of inbound streams to a service, received from the peer or sent to it, counted when each stream ends.",
		[]string{"peer", "service", "direction"}, nil)
	datagramsDesc = prometheus.NewDesc("p2pd_udp_datagrams_total",
		"Datagrams of the udp flows peers opened to a service, received from the peer or sent to it.",
		[]string{"peer", "service", "direction"}, nil)
	datagramsDroppedDesc = prometheus.NewDesc("p2pd_udp_datagrams_dropped_total",
		"Datagrams that udp flows peers opened to a service dropped, by reason (queue_full: from the peer, faster than the target's side read; too_large).",
		[]string{"peer", "service", "reason"}, nil)
	fwdActiveDesc = prometheus.NewDesc("p2pd_forward_connections",
		"Open connections (udp: flows) of a forward.", []string{"listen", "protocol"}, nil)
	fwdTotalDesc = prometheus.NewDesc("p2pd_forward_connections_total",
		"Connections (udp: flows) a forward handled.", []string{"listen", "protocol"}, nil)
	fwdRefusedDesc = prometheus.NewDesc("p2pd_forward_connections_refused_total",
		"Connections a forward reset because it was at its max_connections.", []string{"listen", "protocol"}, nil)
	fwdErrorsDesc = prometheus.NewDesc("p2pd_forward_errors_total",
		"Connections of a forward that got no stream to the service, by cause.", []string{"listen", "protocol", "kind"}, nil)
	proxyActiveDesc = prometheus.NewDesc("p2pd_proxy_connections",
		"Open client connections of a proxy listener (socks5, http).", []string{"listener"}, nil)
	proxyTotalDesc = prometheus.NewDesc("p2pd_proxy_connections_total",
		"Client connections a proxy listener handled.", []string{"listener"}, nil)
	proxyRefusedDesc = prometheus.NewDesc("p2pd_proxy_connections_refused_total",
		"Client connections a proxy listener reset because it was at its max_connections.", []string{"listener"}, nil)
	proxyErrorsDesc = prometheus.NewDesc("p2pd_proxy_errors_total",
		"Failed proxy connections (SOCKS5) and requests (HTTP), by cause.", []string{"kind", "listener"}, nil)
)

// sourceCollector reads a Source at every scrape.
type sourceCollector struct{ src Source }

func (c sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sessionsDesc, rttDesc, lostDesc, sessionBytesDesc, streamsDesc, bytesDesc,
		datagramsDesc, datagramsDroppedDesc,
		fwdActiveDesc, fwdTotalDesc, fwdRefusedDesc, fwdErrorsDesc,
		proxyActiveDesc, proxyTotalDesc, proxyRefusedDesc, proxyErrorsDesc} {
		ch <- d
	}
}

func (c sourceCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.src.Snapshot()

	sessions, rtt := newSeries(sessionsDesc, prometheus.GaugeValue), newSeries(rttDesc, prometheus.GaugeValue)
	lost, sbytes := newSeries(lostDesc, prometheus.CounterValue), newSeries(sessionBytesDesc, prometheus.CounterValue)
	for _, s := range snap.Sessions {
		sessions.add(1, s.Peer, s.Carrier, s.Path)
		if !s.Stats {
			continue
		}
		rtt.set(s.RTT.Seconds(), s.Peer) // one session per peer: a sum of RTTs would mean nothing
		lost.add(float64(s.PacketsLost), s.Peer)
		sbytes.add(float64(s.BytesReceived), s.Peer, dirReceived)
		sbytes.add(float64(s.BytesSent), s.Peer, dirSent)
	}
	emitAll(ch, sessions, rtt, lost, sbytes)

	streams, bytes := newSeries(streamsDesc, prometheus.CounterValue), newSeries(bytesDesc, prometheus.CounterValue)
	for _, s := range snap.Streams {
		streams.add(float64(s.Count), s.Service, s.Result)
	}
	for _, b := range snap.Bytes {
		bytes.add(float64(b.Received), b.Peer, b.Service, dirReceived)
		bytes.add(float64(b.Sent), b.Peer, b.Service, dirSent)
	}
	emitAll(ch, streams, bytes)

	dgrams, dropped := newSeries(datagramsDesc, prometheus.CounterValue), newSeries(datagramsDroppedDesc, prometheus.CounterValue)
	for _, d := range snap.Datagrams {
		dgrams.add(float64(d.Received), d.Peer, d.Service, dirReceived)
		dgrams.add(float64(d.Sent), d.Peer, d.Service, dirSent)
		for reason, n := range d.Dropped {
			dropped.add(float64(n), d.Peer, d.Service, reason)
		}
	}
	emitAll(ch, dgrams, dropped)

	fActive, fTotal := newSeries(fwdActiveDesc, prometheus.GaugeValue), newSeries(fwdTotalDesc, prometheus.CounterValue)
	fRefused, fErrors := newSeries(fwdRefusedDesc, prometheus.CounterValue), newSeries(fwdErrorsDesc, prometheus.CounterValue)
	for _, f := range snap.Forwards {
		fActive.add(float64(f.Active), f.Listen, f.Protocol)
		fTotal.add(float64(f.Total), f.Listen, f.Protocol)
		fRefused.add(float64(f.Refused), f.Listen, f.Protocol)
		for kind, n := range f.Errors {
			fErrors.add(float64(n), f.Listen, f.Protocol, kind)
		}
	}
	emitAll(ch, fActive, fTotal, fRefused, fErrors)

	pActive, pTotal := newSeries(proxyActiveDesc, prometheus.GaugeValue), newSeries(proxyTotalDesc, prometheus.CounterValue)
	pRefused, pErrors := newSeries(proxyRefusedDesc, prometheus.CounterValue), newSeries(proxyErrorsDesc, prometheus.CounterValue)
	for _, p := range snap.Proxies {
		pActive.add(float64(p.Active), p.Listener)
		pTotal.add(float64(p.Total), p.Listener)
		pRefused.add(float64(p.Refused), p.Listener)
		for kind, n := range p.Errors {
			pErrors.add(float64(n), kind, p.Listener)
		}
	}
	emitAll(ch, pActive, pTotal, pRefused, pErrors)
}

// series gathers the values of one metric by label values, so that two
// entries with equal labels make one sample instead of a failed scrape.
type series struct {
	desc   *prometheus.Desc
	typ    prometheus.ValueType
	vals   map[string]float64
	labels map[string][]string
}

func newSeries(desc *prometheus.Desc, typ prometheus.ValueType) *series {
	return &series{desc: desc, typ: typ, vals: map[string]float64{}, labels: map[string][]string{}}
}

func (s *series) add(v float64, labels ...string) {
	k := strings.Join(labels, "\xff")
	s.vals[k] += v
	s.labels[k] = labels
}

func (s *series) set(v float64, labels ...string) {
	k := strings.Join(labels, "\xff")
	s.vals[k] = v
	s.labels[k] = labels
}

// emit sends the samples in label order. A sample whose labels are not
// valid (not UTF-8) is sent as an invalid metric, which the handler reports
// without failing the rest of the scrape.
func (s *series) emit(ch chan<- prometheus.Metric) {
	keys := make([]string, 0, len(s.vals))
	for k := range s.vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m, err := prometheus.NewConstMetric(s.desc, s.typ, s.vals[k], s.labels[k]...)
		if err != nil {
			m = prometheus.NewInvalidMetric(s.desc, err)
		}
		ch <- m
	}
}

func emitAll(ch chan<- prometheus.Metric, all ...*series) {
	for _, s := range all {
		s.emit(ch)
	}
}
