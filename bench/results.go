package main

import (
	"fmt"
	"slices"
	"sync"
)

// figure is one row group of the table.
type figure struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Unit   string `json:"unit"`
	Higher bool   `json:"higher_is_better"`
}

// The figures, in table order. Each p2pd figure is compared with every
// baseline that has the same figure.
var figures = []figure{
	{"bulk1", "bulk, 1 stream", "MiB/s", true},
	{"bulk8", "bulk, 8 streams", "MiB/s", true},
	{"cpu_gib", "tunnel CPU per GiB moved (bulk, 1 stream; both tunnel processes)", "CPU-s/GiB", false},
	{"rtt_p50", "64 B request/response RTT p50", "µs", false},
	{"rtt_p99", "64 B request/response RTT p99", "µs", false},
	{"rr8", "64 B request/response, 8 concurrent connections: round trips", "round trips/s", true},
	{"rr8_p50", "64 B request/response, 8 concurrent connections: RTT p50", "µs", false},
	{"rr8_p99", "64 B request/response, 8 concurrent connections: RTT p99", "µs", false},
	{"rr32", "64 B request/response, 32 concurrent connections: round trips", "round trips/s", true},
	{"rr32_p50", "64 B request/response, 32 concurrent connections: RTT p50", "µs", false},
	{"rr32_p99", "64 B request/response, 32 concurrent connections: RTT p99", "µs", false},
	{"conn_seq", "new connections, sequential (connect, 1 B echoed, close)", "conn/s", true},
	{"conn_par8", "new connections, 8 in parallel", "conn/s", true},
	{"setup_lo", "new session between running daemons, loopback: first connection − warm connection", "ms", false},
	{"setup_rtt", "new session between running daemons, emulated RTT (see notes)", "ms", false},
	{"setup_first", "first session of freshly started daemons, loopback", "ms", false},
	{"setup_cpu", "responder CPU per new session (running daemons)", "µs", false},
	{"setup_cpu_both", "CPU per new session, both sides (initiator's share from the moment its first packet left)", "µs", false},
	{"storm_cpu", "responder CPU per session in a storm of new peers", "µs", false},
	{"hs_core", "handshakes per second per core (responder, from the storm)", "1/s", true},
	{"mem_conn_client", "RSS per open proxied connection, client-side daemon", "KiB", false},
	{"mem_conn_server", "RSS per open proxied connection, server-side daemon", "KiB", false},
	{"mem_conn_client_64k", "RSS per open proxied connection after 64 KiB more echoed on each, client-side daemon", "KiB", false},
	{"mem_conn_server_64k", "RSS per open proxied connection after 64 KiB more echoed on each, server-side daemon", "KiB", false},
	{"mem_conns_held", "proxied connections held open (of those asked)", "conns", true},
	{"mem_rss_client", "RSS of the client-side daemon with the connections open", "MiB", false},
	{"mem_rss_server", "RSS of the server-side daemon with the connections open", "MiB", false},
	{"mem_session", "RSS per idle peer session (responder)", "KiB", false},
	{"ns_bulk1", "netns/veth: bulk, 1 stream", "MiB/s", true},
	{"ns_bulk8", "netns/veth: bulk, 8 streams", "MiB/s", true},
	{"ns_rtt_p50", "netns/veth: 64 B RTT p50", "µs", false},
	{"ns_rtt_p99", "netns/veth: 64 B RTT p99", "µs", false},
	{"ns_rr8", "netns/veth: 64 B request/response, 8 concurrent connections: round trips", "round trips/s", true},
	{"ns_rr8_p50", "netns/veth: 64 B request/response, 8 concurrent connections: RTT p50", "µs", false},
	{"ns_rr8_p99", "netns/veth: 64 B request/response, 8 concurrent connections: RTT p99", "µs", false},
	{"ns_rr32", "netns/veth: 64 B request/response, 32 concurrent connections: round trips", "round trips/s", true},
	{"ns_rr32_p50", "netns/veth: 64 B request/response, 32 concurrent connections: RTT p50", "µs", false},
	{"ns_rr32_p99", "netns/veth: 64 B request/response, 32 concurrent connections: RTT p99", "µs", false},
	{"ns_conn_seq", "netns/veth: new connections, sequential", "conn/s", true},
	{"ns_conn_par8", "netns/veth: new connections, 8 in parallel", "conn/s", true},
}

// results collects samples by figure and system, and free-form notes.
type results struct {
	mu      sync.Mutex // guards the fields below
	samples map[string]map[string][]float64
	notes   []string
}

func newResults() *results {
	return &results{samples: make(map[string]map[string][]float64)}
}

func (r *results) add(fig, sys string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.samples[fig] == nil {
		r.samples[fig] = make(map[string][]float64)
	}
	r.samples[fig][sys] = append(r.samples[fig][sys], v)
}

func (r *results) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// summary is what the table shows of one figure and system.
type summary struct {
	Samples []float64 `json:"samples"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
}

func summarize(v []float64) summary {
	s := slices.Clone(v)
	slices.Sort(s)
	return summary{Samples: v, Median: median(s), Min: s[0], Max: s[len(s)-1]}
}

// median of sorted values; the mean of the middle two for an even count.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func (r *results) summary(fig, sys string) (summary, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.samples[fig][sys]
	if len(v) == 0 {
		return summary{}, false
	}
	return summarize(v), true
}
