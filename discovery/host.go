package discovery

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
)

const userAgent = "p2pd"

// relayBackoff is how long autorelay waits before asking a static relay
// again after a failed reservation.
const relayBackoff = 30 * time.Second

// Resource-manager limits raised for a private overlay: libp2p's defaults
// (8 connections per IPv4 address, 16 new ones at once and then one per
// 5 s per address, 32 inbound connections in the transient scope) assume
// an open network of strangers; here every connection that outlives its
// handshake is a trusted peer's, and many of them may sit behind one NAT
// address and reconnect together when this node restarts. Every inbound
// QUIC handshake on the shared port, overlay ones included, passes through
// these limits.
const (
	connsPerIP      = 64
	newConnsPerIP   = 2.0 // per second, after a burst of connsPerIP
	systemConns     = 1024
	transientConns  = 256
	rateGracePeriod = time.Minute
)

// relayResources are the limits of this node's relay service. Relayed
// connections carry overlay streams, so they are not cut after libp2p's
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
	libp2p.SetDefaultServiceLimits(&scaling)
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

// connRateLimiter limits how fast one address may open connections.
func connRateLimiter() *rate.Limiter {
	perIP := rate.Limit{RPS: newConnsPerIP, Burst: connsPerIP}
	return &rate.Limiter{
		NetworkPrefixLimits: []rate.PrefixLimit{ // loopback: unlimited
			{Prefix: netip.MustParsePrefix("127.0.0.0/8")},
			{Prefix: netip.MustParsePrefix("::1/128")},
		},
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: perIP}},
			IPv6SubnetLimits: []rate.SubnetLimit{{PrefixLength: 56, Limit: perIP}},
			GracePeriod:      rateGracePeriod,
		},
	}
}

// hostOptions are the libp2p options of the node's host: QUIC only, on the
// shared sockets, with the node's own key, private (gater), with AutoNAT v2,
// hole punching, a circuit relay v2 client and, when configured, static
// relays and a relay service for trusted peers.
func hostOptions(cfg *Config, sh *sharing, g *gater, relays []peer.AddrInfo, af func([]ma.Multiaddr) []ma.Multiaddr) ([]libp2p.Option, error) {
	priv, err := crypto.UnmarshalEd25519PrivateKey(cfg.Key.Ed25519())
	if err != nil {
		return nil, fmt.Errorf("discovery: own key for libp2p: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.ListenAddrs(sh.listen...),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.QUICReuse(sh.newConnManager),
		libp2p.ConnectionGater(g),
		libp2p.AddrsFactory(af),
		libp2p.UserAgent(userAgent),
		libp2p.DisableMetrics(),
		// Every transport is UDP: a run of failed dials (gated peers,
		// stale addresses) must not make the swarm refuse UDP dials.
		libp2p.UDPBlackHoleSuccessCounter(nil),
		libp2p.IPv6BlackHoleSuccessCounter(nil),
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(),
		libp2p.EnableAutoNATv2(),
	}
	if len(relays) > 0 {
		// libp2p waits an hour after a failed reservation; a relay that
		// was down or did not trust this node yet is tried again sooner.
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(relays, autorelay.WithBackoff(relayBackoff)))
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
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case len(relays) > 0:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.RelayService {
		opts = append(opts, libp2p.EnableRelayService(
			relayv2.WithResources(relayResources()),
			relayv2.WithACL(relayACL{g}),
		))
	}
	return opts, nil
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

func (p *hostParts) options() []libp2p.Option {
	return []libp2p.Option{libp2p.ResourceManager(p.rm), libp2p.Peerstore(p.ps), libp2p.ConnectionManager(p.cm)}
}

func (p *hostParts) close() {
	p.cm.Close()
	p.ps.Close()
	p.rm.Close()
}

// libp2p's default connection-manager watermarks.
const (
	connsLow  = 160
	connsHigh = 192
)

// newHost builds and starts the host. libp2p calls sh.newConnManager while
// building it, and the swarm listens on the shared sockets when it starts.
// When the start fails libp2p leaves much of the host running (its swarm,
// the AutoNAT dialer); newSharing checks the sockets first so that the
// foreseeable failure, an endpoint that already listens, happens before.
func newHost(parts *hostParts, opts []libp2p.Option) (host.Host, error) {
	h, err := libp2p.New(append(parts.options(), opts...)...)
	if err != nil {
		parts.close()
		return nil, fmt.Errorf("discovery: libp2p host: %w", err)
	}
	return h, nil
}
