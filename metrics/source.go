package metrics

import "time"

// Source is what the daemon counts. Snapshot is called once per scrape, on
// the scrape's goroutine; it must be safe for concurrent use and cheap.
type Source interface {
	Snapshot() Snapshot
}

// SourceFunc adapts a function to Source.
type SourceFunc func() Snapshot

// Snapshot calls f.
func (f SourceFunc) Snapshot() Snapshot { return f() }

// Snapshot is the daemon's counts at one moment. Entries whose labels are
// equal are added together.
type Snapshot struct {
	Sessions []Session
	Streams  []StreamCount
	Bytes    []ByteCount
	Forwards []Forward
	Proxies  []Proxy
	// Datagrams is the udp flows peers opened to the node's services.
	Datagrams []DatagramCount
}

// Session is one live session to a peer, over any carrier.
type Session struct {
	Peer    string // the configured name
	Carrier string // "quic", "tcp", "relay" or "libp2p"
	Path    string // "direct" or "relayed"
	// Stats tells whether the fields below are known (every carrier has
	// them; an embedder's source may not).
	Stats         bool
	RTT           time.Duration
	PacketsLost   uint64
	BytesSent     uint64
	BytesReceived uint64
}

// StreamCount is how many inbound streams to Service ended in Result.
type StreamCount struct {
	Service, Result string
	Count           uint64
}

// ByteCount is the payload of the inbound streams Peer opened to Service.
type ByteCount struct {
	Peer, Service  string
	Received, Sent uint64
}

// DatagramCount is what the udp flows Peer opened to Service carried:
// datagrams Received from the peer, Sent to it, and Dropped by reason.
type DatagramCount struct {
	Peer, Service  string
	Received, Sent uint64
	Dropped        map[string]uint64
}

// Forward is one local forward's counters.
type Forward struct {
	Listen   string // as configured
	Protocol string // "tcp" or "udp"
	Active   int
	Total    uint64
	Refused  uint64
	Errors   map[string]uint64 // by kind
}

// Proxy is one proxy listener's counters.
type Proxy struct {
	Listener string // "socks5" or "http"
	Active   int
	Total    uint64
	Refused  uint64
	Errors   map[string]uint64 // by kind
}

// Build is what p2pd_build_info carries.
type Build struct {
	Version, Commit, GoVersion string
}
