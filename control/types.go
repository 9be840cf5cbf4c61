package control

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrNotFound is wrapped by Backend errors for an unknown peer (or other named
// object). The Server answers it with 404 and the Client returns an error that
// matches it with errors.Is.
var ErrNotFound = errors.New("control: not found")

// ErrNotRunning is matched (errors.Is) by Client errors when no daemon listens
// on the control socket: the socket file is missing or refuses connections.
var ErrNotRunning = errors.New("control: daemon not running")

// Status describes the running daemon.
type Status struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	Listen        []string  `json:"listen"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Peers         int       `json:"peers"`
	Connected     int       `json:"connected"`
	Services      int       `json:"services"`
	Forwards      int       `json:"forwards"`
	// Addresses are the libp2p multiaddrs others can use to reach this node
	// (bootstrap, relays), observed ones included; empty without discovery.
	Addresses []string `json:"addresses,omitempty"`
	// DHT is the private DHT's state; absent when the DHT is off.
	DHT *DHTStatus `json:"dht,omitempty"`
	// Config is the absolute path of the config file the daemon loaded;
	// empty when it runs on defaults without one.
	Config string `json:"config,omitempty"`
}

// DHTStatus is the node's view of the private DHT.
type DHTStatus struct {
	// RoutingTable counts the DHT nodes the node knows, trusted or not.
	RoutingTable int `json:"routing_table"`
	// Connections counts libp2p's open connections (DHT, identify, hole
	// punching, relays), bounded by the connection manager.
	Connections int `json:"libp2p_connections"`
}

// Peer states reported in Peer.State.
const (
	PeerConnected    = "connected"
	PeerConnecting   = "connecting"
	PeerDisconnected = "disconnected"
	// PeerIdle is an on-demand peer (not always_on) with no session and no
	// failure on record: the next connection to it dials.
	PeerIdle = "idle"
)

// Peer is one trusted peer from the configuration and what the daemon knows
// about reaching it.
type Peer struct {
	Name      string   `json:"name"`
	ID        string   `json:"id"`
	State     string   `json:"state"` // PeerConnected, PeerConnecting, PeerDisconnected or PeerIdle
	Addresses []string `json:"addresses"`
	// Endpoint is the remote address of the live session, if any.
	Endpoint      string     `json:"endpoint,omitempty"`
	LastHandshake *time.Time `json:"last_handshake,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	// Sources says how the addresses were found: static, mdns, dht, learned.
	Sources []string `json:"sources,omitempty"`
	// Path is "direct" or "relayed" while connected; Relay names the relay.
	Path  string `json:"path,omitempty"`
	Relay string `json:"relay,omitempty"`
	// DirectReason says why a relayed peer has no direct path yet, e.g.
	// "symmetric NAT on both sides: staying relayed".
	DirectReason string `json:"direct_reason,omitempty"`
	// Carrier is "quic", "tcp" or "libp2p" (a libp2p stream on a direct
	// libp2p connection) on a direct path, "relay" on a relayed one;
	// CarrierReason says why it is TCP.
	Carrier       string `json:"carrier,omitempty"`
	CarrierReason string `json:"carrier_reason,omitempty"`
	// Origin is where the peer is listed: "config" (the config file) or
	// "trust" (the trust file, changed by p2pctl trust add and rm).
	Origin string `json:"origin,omitempty"`
}

// Session is one authenticated session with a peer.
type Session struct {
	Peer          string    `json:"peer"`
	PeerID        string    `json:"peer_id"`
	Remote        string    `json:"remote"`
	Carrier       string    `json:"carrier"` // "quic", "tcp", "relay" or "libp2p"
	Initiator     bool      `json:"initiator"`
	State         string    `json:"state"`
	EstablishedAt time.Time `json:"established_at"`
	AgeSeconds    float64   `json:"age_seconds"`
	RTTMillis     float64   `json:"rtt_ms"`
	Streams       int       `json:"streams"`
	// Conns is how many connections the session has: on QUIC one, plus
	// one per StreamsPerConn concurrent streams it needed beyond that; on
	// TCP one, or two once it carried streams.
	Conns         int    `json:"conns"`
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	// Packets counted by QUIC; lost ones were sent and declared lost.
	PacketsSent     uint64 `json:"packets_sent"`
	PacketsReceived uint64 `json:"packets_received"`
	PacketsLost     uint64 `json:"packets_lost"`
	// GSO: the kernel batches this session's sends (UDP segmentation offload).
	GSO bool `json:"gso"`
}

// Service is one local service exposed to peers.
type Service struct {
	Name     string   `json:"name"`
	Target   string   `json:"target"`
	Protocol string   `json:"protocol"`
	Allow    []string `json:"allow"`
	Active   int      `json:"active"`
	Total    uint64   `json:"total"`
}

// Forward is one local port forward to a peer's service.
type Forward struct {
	Listen         string `json:"listen"`
	Protocol       string `json:"protocol"` // "tcp" or "udp"
	Peer           string `json:"peer"`
	Service        string `json:"service"`
	MaxConnections int    `json:"max_connections"` // the cap in force on concurrent connections
	Active         int    `json:"active"`
	Total          uint64 `json:"total"`
	// Refused counts connections reset because the forward was at its cap.
	Refused uint64 `json:"refused"`
	// AcceptErrors counts failed accepts, such as EMFILE when the daemon is
	// out of file descriptors; the forward keeps retrying.
	AcceptErrors uint64 `json:"accept_errors"`
	// Errors counts connections that got no stream to the service, by
	// kind, as Proxy.Errors does: "peer_unreachable", "timeout",
	// "unknown_service", "access_denied", "target_refused",
	// "target_unreachable", "overloaded", … Kinds that never happened are
	// absent.
	Errors map[string]uint64 `json:"errors,omitempty"`
}

// Proxy is one local proxy listener: the SOCKS5 server or the HTTP proxy.
type Proxy struct {
	Kind           string `json:"kind"` // "socks5" or "http"
	Listen         string `json:"listen"`
	Auth           bool   `json:"auth"`            // clients must give the configured credentials
	MaxConnections int    `json:"max_connections"` // the cap in force on concurrent connections
	Active         int    `json:"active"`
	Total          uint64 `json:"total"`
	// Refused counts connections reset because the listener was at its cap
	// and no connection was idle.
	Refused uint64 `json:"refused"`
	// Evicted counts idle connections (in their SOCKS5 handshake, or waiting
	// for an HTTP request head) closed to make room at the cap.
	Evicted uint64 `json:"evicted"`
	// AcceptErrors counts failed accepts, such as EMFILE; the listener keeps retrying.
	AcceptErrors uint64 `json:"accept_errors"`
	// Errors counts failed connections (SOCKS5) and requests (HTTP) by kind:
	// "unknown_peer", "unknown_service", "access_denied", "target_refused",
	// "target_unreachable", "peer_unreachable", "timeout", "overloaded",
	// "bad_request", "not_p2p", "auth", "handshake", "other". Kinds that
	// never happened are absent.
	Errors map[string]uint64 `json:"errors"`
}

// PingResult is the answer to one ping over a peer's session.
type PingResult struct {
	Peer      string  `json:"peer"`
	RTTMillis float64 `json:"rtt_ms"`
	Remote    string  `json:"remote"`
	// Path is how the ping went, as Peer.Path: "direct" or "relayed";
	// Relay names the relay, Carrier is "quic" or "tcp" on a direct path
	// ("relay" on a relayed one).
	Path    string `json:"path,omitempty"`
	Relay   string `json:"relay,omitempty"`
	Carrier string `json:"carrier,omitempty"`
}

// Backend is what the Server needs from the daemon. The daemon implements it;
// so does Client, which forwards every call over the socket. Methods are
// called concurrently from request goroutines and must honour ctx.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Peers(ctx context.Context) ([]Peer, error)
	Sessions(ctx context.Context) ([]Session, error)
	Services(ctx context.Context) ([]Service, error)
	Forwards(ctx context.Context) ([]Forward, error)
	Proxies(ctx context.Context) ([]Proxy, error)
	// Ping pings a peer named by its configured name or peer ID. An unknown
	// peer yields an error wrapping ErrNotFound.
	Ping(ctx context.Context, peer string) (PingResult, error)
	// Reload re-reads the configuration; on failure nothing changes and the
	// error says why.
	Reload(ctx context.Context) error
	// Whois returns the live connections to service targets whose local
	// address is addr (whois.go); none is an empty list.
	Whois(ctx context.Context, addr netip.AddrPort) ([]Connection, error)
	// Flows lists the live UDP flows (flows.go).
	Flows(ctx context.Context) ([]Flow, error)
}

// List envelopes: each list travels as an object keyed by the resource name.
type (
	peersResponse struct {
		Peers []Peer `json:"peers"`
	}
	sessionsResponse struct {
		Sessions []Session `json:"sessions"`
	}
	servicesResponse struct {
		Services []Service `json:"services"`
	}
	forwardsResponse struct {
		Forwards []Forward `json:"forwards"`
	}
	proxiesResponse struct {
		Proxies []Proxy `json:"proxies"`
	}
	errorResponse struct {
		Error string `json:"error"`
	}
)

// nonNil returns s, or an empty slice for nil, so that lists encode as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
