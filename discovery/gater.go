package discovery

import (
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pd/p2pd/identity"
)

// gater keeps the libp2p host private: only trusted peers, the configured
// bootstrap nodes and the configured relays may hold a connection to it, in
// either direction. Trust is asked on every connection, so a reload takes
// effect for the next one (Discovery.Reload closes the existing ones).
type gater struct {
	trusted func(identity.PeerID) bool
	fixed   map[peer.ID]bool // bootstrap nodes and relays; immutable
}

var _ connmgr.ConnectionGater = (*gater)(nil)

func newGater(trusted func(identity.PeerID) bool, infos ...[]peer.AddrInfo) *gater {
	g := &gater{trusted: trusted, fixed: map[peer.ID]bool{}}
	for _, list := range infos {
		for _, ai := range list {
			g.fixed[ai.ID] = true
		}
	}
	return g
}

// allowed reports whether p may hold a connection.
func (g *gater) allowed(p peer.ID) bool {
	return g.fixed[p] || g.isTrusted(p)
}

// isTrusted reports whether p is an Ed25519 peer ID in the trust list.
func (g *gater) isTrusted(p peer.ID) bool {
	id, err := fromPeer(p)
	return err == nil && g.trusted(id)
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return g.allowed(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.allowed(p) }

// InterceptAccept allows every incipient connection: its peer is not known
// until the handshake; InterceptSecured decides.
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}

func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// relayACL lets this node relay only between its trusted peers.
type relayACL struct{ g *gater }

var _ relayv2.ACLFilter = relayACL{}

func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.g.isTrusted(p) }

func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dst peer.ID) bool {
	return a.g.isTrusted(src) && a.g.isTrusted(dst)
}

// toPeer converts a p2pd peer ID to libp2p's; both are the same multihash.
func toPeer(id identity.PeerID) (peer.ID, error) { return peer.Decode(id.String()) }

// fromPeer converts a libp2p peer ID to p2pd's; it fails for key types other
// than Ed25519.
func fromPeer(p peer.ID) (identity.PeerID, error) { return identity.ParsePeerID(p.String()) }
