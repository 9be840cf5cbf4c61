package discovery

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/config"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/fx"
)

const userAgent = "p2pd"

// relayBackoff is how long autorelay waits before asking a static relay
// again after a failed reservation.
const relayBackoff = 30 * time.Second

// Resource-manager limits raised for a private overlay: libp2p's defaults
// (8 connections per IPv4 address, 16 new ones at once and then one per 5 s
// per address, 32 inbound connections in the transient scope) assume an
// open network of strangers; here every connection that outlives its
// handshake is a trusted peer's, and many of them may sit behind one NAT
// address and reconnect together when this node restarts. The rate limit
// is off (connRateLimiter); the counts hold.
const (
	connsPerIP     = 64
	systemConns    = 1024
	transientConns = 256
)

// relayResources are the limits of this node's relay service. Relayed
// connections carry overlay sessions, so they are not cut after libp2p's
// default 2 minutes or 128 KiB, and bytes move in larger chunks.
func relayResources() relayv2.Resources {
	rc := relayv2.DefaultResources()
	rc.Limit = nil
	rc.BufferSize = 32 << 10
	rc.MaxCircuits = 64
	rc.MaxReservationsPerIP = connsPerIP
	return rc
}

func newResourceManager() (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	limits := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns:        rcmgr.LimitVal(systemConns),
			ConnsInbound: rcmgr.LimitVal(systemConns),
		},
		Transient: rcmgr.ResourceLimits{
			Conns:        rcmgr.LimitVal(transientConns),
			ConnsInbound: rcmgr.LimitVal(transientConns),
		},
	}.Build(scaling.AutoScale())
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits),
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: connsPerIP}},
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: connsPerIP}, {PrefixLength: 48, ConnCount: 8 * connsPerIP}},
		),
		rcmgr.WithConnRateLimiters(connRateLimiter()),
	)
	if err != nil {
		return nil, fmt.Errorf("discovery: resource manager: %w", err)
	}
	return rm, nil
}

// connRateLimiter is libp2p's limit on how fast one address may open
// connections: none. libp2p spends the token when a connection's scope
// opens, after the TLS handshake and before the gater has seen the key, so
// a stranger's refused handshakes from a trusted peer's address (its NAT,
// its /56) would spend that peer's tokens and lock it out of the DHT,
// relays and hole punching. The rate of new connections from a source is
// the endpoint's admission's to bound, before any handshake state, on the
// same sockets (transport's sourceLimiter, Retry); the per-IP count of live
// connections (WithLimitPerSubnet) still holds.
func connRateLimiter() *rate.Limiter { return &rate.Limiter{} }

// hostConfig is the libp2p configuration of the node's host: QUIC only, on
// the shared sockets, with the node's own key, private (gater), with
// AutoNAT v2, a circuit relay v2 client and, when
// configured, static relays and a relay service for trusted peers.
//
// It is built field by field instead of through package libp2p's options:
// that package links every default transport, WebTransport among them,
// whose library does not build with the quic-go release the overlay needs
// (v0.65, the first whose server keeps a session through more than two NAT
// rebindings).
func hostConfig(cfg *Config, sh *sharing, g *gater, relays []peer.AddrInfo, af func([]ma.Multiaddr) []ma.Multiaddr) (*config.Config, error) {
	priv, err := crypto.UnmarshalEd25519PrivateKey(cfg.Key.Ed25519())
	if err != nil {
		return nil, fmt.Errorf("discovery: own key for libp2p: %w", err)
	}
	hc := baseHostConfig(priv)
	hc.ListenAddrs = sh.listen
	hc.QUICReuse = []fx.Option{fx.Provide(sh.newConnManager)}
	hc.ConnectionGater = g
	hc.AddrsFactory = af
	// Every transport is UDP: a run of failed dials (gated peers, stale
	// addresses) must not make the swarm refuse UDP dials.
	hc.CustomUDPBlackHoleSuccessCounter = true
	hc.CustomIPv6BlackHoleSuccessCounter = true
	hc.Relay = true
	// Hole punching runs beside the host, started by Discovery (punch.go):
	// the host's own would miss relayed connections that come in before
	// it knows a public address, and never retries.
	hc.EnableHolePunching = false
	hc.EnableAutoNATv2 = true
	if len(relays) > 0 {
		// libp2p waits an hour after a failed reservation; a relay that
		// was down or did not trust this node yet is tried again sooner.
		hc.EnableAutoRelay = true
		hc.AutoRelayOpts = []autorelay.Option{autorelay.WithStaticRelays(relays), autorelay.WithBackoff(relayBackoff)}
	}
	// Reachability cannot be measured here: AutoNAT servers dial back from
	// a throwaway identity, which the gater refuses. libp2p runs the relay
	// service only when it believes the node public and looks for relay
	// reservations only when it believes it private, so the configuration
	// says which: a relay is public, a node with relays keeps a
	// reservation as a fallback path (and keeps announcing its direct
	// addresses too, since AutoNAT v2 confirms none).
	switch {
	case cfg.RelayService:
		public := network.ReachabilityPublic
		hc.AutoNATConfig.ForceReachability = &public
	case len(relays) > 0:
		private := network.ReachabilityPrivate
		hc.AutoNATConfig.ForceReachability = &private
	}
	if cfg.RelayService {
		hc.EnableRelayService = true
		hc.RelayServiceOpts = []relayv2.Option{relayv2.WithResources(relayResources()), relayv2.WithACL(relayACL{g})}
	}
	return hc, nil
}

// baseHostConfig is a QUIC-only libp2p host with key priv, without
// metrics: libp2p's QUIC transport, and for connections through a circuit
// relay, which libp2p secures and multiplexes itself, Noise and TLS with
// yamux. The caller adds the listen addresses and the host's parts.
func baseHostConfig(priv crypto.PrivKey) *config.Config {
	return &config.Config{
		PeerKey:   priv,
		UserAgent: userAgent,
		Transports: []fx.Option{fx.Provide(fx.Annotate(libp2pquic.NewTransport,
			fx.As(new(tpt.Transport)), fx.ResultTags(`group:"transport"`)))},
		SecurityTransports: []config.Security{{ID: libp2ptls.ID, Constructor: libp2ptls.New}, {ID: noise.ID, Constructor: noise.New}},
		Muxers:             []tptu.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}},
		RelayCustom:        true,
		DisableMetrics:     true,
	}
}

// hostParts are the parts of a host that the host closes when it closes,
// but that libp2p leaves running when it fails to start; they are made here
// so that a failed start can close them.
type hostParts struct {
	rm network.ResourceManager
	ps peerstore.Peerstore
	cm *connmgr.BasicConnMgr
}

func newHostParts() (*hostParts, error) {
	rm, err := newResourceManager()
	if err != nil {
		return nil, err
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("discovery: peerstore: %w", err)
	}
	cm, err := connmgr.NewConnManager(connsLow, connsHigh)
	if err != nil {
		rm.Close()
		ps.Close()
		return nil, fmt.Errorf("discovery: connection manager: %w", err)
	}
	return &hostParts{rm: rm, ps: ps, cm: cm}, nil
}

// into puts the parts into hc.
func (p *hostParts) into(hc *config.Config) {
	hc.ResourceManager, hc.Peerstore, hc.ConnManager = p.rm, p.ps, p.cm
}

func (p *hostParts) close() {
	p.cm.Close()
	p.ps.Close()
	p.rm.Close()
}

// The connection manager's watermarks: above connsHigh libp2p connections
// it closes the least useful down to connsLow. Connections younger than
// its grace period (a minute), those of configured relays (autorelay
// protects them) and those carrying overlay streams (streamHolds) are
// spared. libp2p's defaults (160/192) let a node of a large mesh hold a
// connection to nearly every peer it ever looked up or that refreshed its
// routing table through it, each with its keepalives and buffers, so an
// idle node's cost grew with the mesh. The DHT needs no standing
// connections: its routing table keeps peers, not connections, and a query
// dials what it needs.
const (
	connsLow  = 16
	connsHigh = 32
)

// newHost builds and starts the host. libp2p calls sh.newConnManager while
// building it, and the swarm listens on the shared sockets when it starts.
// When the start fails libp2p leaves much of the host running (its swarm,
// the AutoNAT dialer); newSharing checks the sockets first so that the
// foreseeable failure, an endpoint that already listens, happens before.
func newHost(parts *hostParts, hc *config.Config) (host.Host, error) {
	parts.into(hc)
	h, err := hc.NewNode()
	if err != nil {
		parts.close()
		return nil, fmt.Errorf("discovery: libp2p host: %w", err)
	}
	return h, nil
}
