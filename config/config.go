package config

import (
	"os"
	"path/filepath"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// Config is a loaded configuration. Load returns it with defaults filled in and every path
// absolute; Validate checks it.
type Config struct {
	Path string // the file it was loaded from, absolute ("" = defaults, no file)
	Dir  string // directory relative paths resolve against (the file's, or DefaultStateDir())

	Node      Node
	Discovery Discovery
	Peers     []Peer
	Services  []Service
	Forwards  []Forward
	Proxy     Proxy
	Metrics   Metrics
	Log       Log

	// Managed is what the trust file (TrustPath, see managed.go) added to
	// and removed from Peers and Services when Load merged it.
	Managed Managed

	// Warnings are slips Load mended instead of refusing; the daemon logs them.
	Warnings []string

	// trustUnread: the trust file did not load, so the peers it adds are
	// unknown and a name that no peer has is not reported (that error would
	// be false for a peer of the trust file; the trust file's own is not).
	trustUnread bool
}

// Node is the [node] table: this daemon's own identity and sockets.
type Node struct {
	Name    string   // sent to peers in the handshake; default: the host name
	KeyFile string   // Ed25519 key file; absolute after Load; default Dir/identity.key
	Listen  []string // UDP "host:port" for QUIC and libp2p; host is an IP or "localhost"
	// ListenTCP are the TCP carrier's "host:port" addresses. Absent (nil):
	// the addresses of Listen, TCP at the same port numbers; empty: no TCP
	// carrier inbound. TCPAddrs resolves the default.
	ListenTCP     []string
	ControlSocket string // Unix socket for p2pctl; absolute after Load
	StateDir      string // absolute after Load; default Dir
	// SessionIdle closes a session to a peer that is not always_on after that long with no
	// stream; 0 (absent) means DefaultSessionIdle.
	SessionIdle time.Duration
}

// Bounds of [node] session_idle.
const (
	DefaultSessionIdle = 5 * time.Minute
	MinSessionIdle     = time.Second
	MaxSessionIdle     = 7 * 24 * time.Hour
)

// Discovery is the [discovery] table.
type Discovery struct {
	MDNS         bool     // find peers on the LAN; default true
	DHT          bool     // private Kademlia DHT; default false
	Bootstrap    []string // libp2p multiaddrs ending in /p2p/<peer ID>
	Relays       []string // circuit relay v2 nodes, multiaddrs ending in /p2p/<peer ID>
	RelayService bool     // act as a relay for this node's trusted peers
}

// Peer is one [[peers]] entry: a trusted node.
type Peer struct {
	Name      string
	ID        identity.PeerID
	Addresses []string // static UDP endpoints, "host:port"; host may be a DNS name
	// Transport is the carrier: "auto" (the default: QUIC, TCP when QUIC
	// does not complete within a moment), "quic" or "tcp".
	Transport string
	// AlwaysOn keeps a session to the peer at all times, redialing when it drops. Without it
	// (the default) a session opens when something uses the peer and closes after
	// Node.SessionIdle without streams.
	AlwaysOn bool
}

// Protocols of a Service.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// Service is one [[services]] entry: a local target that peers may reach.
type Service struct {
	Name     string
	Target   string   // "host:port", or "unix:/abs/path" for tcp
	Protocol string   // ProtocolTCP (also when "") or ProtocolUDP
	Allow    []string // peer names, or "*" for every peer; empty means nobody
	// ProxyProtocol is "" (off) or ProxyProtocolV2: a PROXY protocol v2
	// header, with the peer's ID and name in TLVs, opens every connection
	// to the target.
	ProxyProtocol string
	// IdleTimeout ends a udp flow after that long without a datagram; 0
	// (absent) means DefaultFlowIdle.
	IdleTimeout time.Duration
}

// DefaultFlowIdle is a udp flow's idle timeout when none is set.
const DefaultFlowIdle = 60 * time.Second

// MaxFlowIdle bounds idle_timeout.
const MaxFlowIdle = 24 * time.Hour

// ProxyProtocolV2 is the one value of Service.ProxyProtocol that turns it on.
const ProxyProtocolV2 = "v2"

// Forward is one [[forwards]] entry: a local TCP port or Unix socket that leads to a peer's
// service.
type Forward struct {
	// Listen is "host:port" or "unix:/abs/path"; Load turns "15432" and ":15432" into
	// "127.0.0.1:15432" and cleans a socket path.
	Listen  string
	Peer    string // a [[peers]] name
	Service string // a service name on that peer
	// MaxConnections caps the forward's concurrent connections: 1 to MaxForwardConnections, or
	// 0 (absent) for the default, DefaultForwardConnections. A udp forward caps its flows.
	MaxConnections int
	// Protocol is ProtocolTCP (also when "") or ProtocolUDP: a local UDP port whose clients
	// each get a flow to the peer's udp service.
	Protocol string
	// IdleTimeout ends a udp forward's flow after that long without a datagram; 0 (absent)
	// means DefaultFlowIdle.
	IdleTimeout time.Duration
}

// Bounds of [[forwards]] max_connections.
const (
	DefaultForwardConnections = 8192
	MaxForwardConnections     = 1 << 20
)

// Metrics is the [metrics] table: the Prometheus endpoint.
type Metrics struct {
	// Listen is the "host:port" serving /metrics over HTTP; "" (the default) is off. Load
	// turns "9464" into "127.0.0.1:9464".
	Listen string
}

// Log is the [log] table.
type Log struct {
	Level  string // debug, info, warn or error
	Format string // text or json
}

// Default returns the configuration used when there is no config file.
func Default() *Config {
	dir := DefaultStateDir()
	return &Config{
		Dir: dir,
		Node: Node{
			Name:          defaultName(),
			KeyFile:       filepath.Join(dir, defaultKeyFile),
			Listen:        []string{"0.0.0.0:4242", "[::]:4242"},
			ControlSocket: DefaultControlSocket(),
			StateDir:      dir,
		},
		Discovery: Discovery{MDNS: true},
		Log:       Log{Level: "info", Format: "text"},
	}
}

const (
	defaultKeyFile = "identity.key"
	fallbackName   = "p2pd"
)

// defaultName is the host name, or "p2pd" when it is unusable as a node name.
func defaultName() string {
	h, err := os.Hostname()
	if err != nil || checkNodeName(h) != "" {
		return fallbackName
	}
	return h
}

// PeerByName returns the [[peers]] entry with exactly this name.
func (c *Config) PeerByName(name string) (Peer, bool) {
	for _, p := range c.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}

// TCPAddrs returns the TCP carrier's listen addresses: ListenTCP, or when it
// is absent the addresses of Listen (the same port numbers over TCP).
func (n Node) TCPAddrs() []string {
	if n.ListenTCP == nil {
		return append([]string(nil), n.Listen...)
	}
	return n.ListenTCP
}
