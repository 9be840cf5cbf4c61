package discovery

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pd/p2pd/identity"
)

// requestConnect asks the connect workers to connect the host to ai, so
// that identify, the DHT and hole punching run with that peer. It never
// blocks: when the workers are busy the request is dropped (the source
// repeats itself).
func (d *Discovery) requestConnect(ai peer.AddrInfo) {
	select {
	case d.connect <- ai:
	default:
		d.log.Debug("libp2p connect queue full; request dropped", "peer", ai.ID.String())
	}
}

func (d *Discovery) connectWorker() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case ai := <-d.connect:
			d.connectNow(ai)
		}
	}
}

// connectNow connects the host to ai unless it is connected already.
func (d *Discovery) connectNow(ai peer.AddrInfo) error {
	if d.host.Network().Connectedness(ai.ID) == network.Connected {
		return nil
	}
	ctx, cancel := context.WithTimeout(d.ctx, connectTimeout)
	defer cancel()
	if err := d.host.Connect(ctx, ai); err != nil {
		d.log.Debug("libp2p connect failed", "peer", ai.ID.String(), "err", err)
		return err
	}
	return nil
}

// connected reports the remote address of a direct libp2p connection of a
// trusted peer as a learned record. The peer's host listens on and dials
// from its shared overlay port, so the overlay reaches it there too: on a
// LAN, through a NAT that the connection's packets opened, and after hole
// punching replaced a relayed path. The address is not persisted; the
// overlay session made with it is, through Learned.
func (d *Discovery) connected(_ network.Network, c network.Conn) {
	ap, ok := overlayAddr(c.RemoteMultiaddr())
	if !ok || !dialable(ap) {
		return
	}
	id, err := fromPeer(c.RemotePeer())
	if err != nil || !d.cfg.Trusted(id) {
		return
	}
	d.em.push(Record{Peer: id, Addrs: []string{ap.String()}, Source: SourceLearned})
}

// Learned records the observed remote address of a live session with id
// ("ip:port"): it is persisted, emitted as a Record with SourceLearned and
// given to the libp2p host, which connects to the peer there too.
func (d *Discovery) Learned(id identity.PeerID, addr string) {
	ap, err := parseOverlay(addr)
	if err != nil || !dialable(ap) || d.ctx.Err() != nil {
		return
	}
	addrs, err := d.store.add(id, ap.String(), time.Now())
	if err != nil {
		d.log.Warn("learned address not saved", "peer", id.ShortString(), "err", err)
	}
	d.em.push(Record{Peer: id, Addrs: addrs, Source: SourceLearned})
	ai, err := overlayInfo(id, []string{ap.String()})
	if err != nil {
		return
	}
	d.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.RecentlyConnectedAddrTTL)
	d.requestConnect(ai)
}

// overlayInfo converts overlay addresses of id to a libp2p AddrInfo.
func overlayInfo(id identity.PeerID, addrs []string) (peer.AddrInfo, error) {
	pid, err := toPeer(id)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("discovery: peer id %s: %w", id, err)
	}
	ai := peer.AddrInfo{ID: pid}
	for _, s := range addrs {
		ap, err := parseOverlay(s)
		if err != nil {
			continue
		}
		if m, err := quicMultiaddr(ap); err == nil {
			ai.Addrs = append(ai.Addrs, m)
		}
	}
	return ai, nil
}

// parseOverlay parses an overlay address "ip:port".
func parseOverlay(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("discovery: address %q: want ip:port", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// directAddrs returns the multiaddrs among addrs that overlayAddr accepts
// and keep (may be nil) allows.
func directAddrs(addrs []ma.Multiaddr, keep func(netip.AddrPort) bool) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if ap, ok := overlayAddr(a); ok && (keep == nil || keep(ap)) {
			out = append(out, a)
		}
	}
	return out
}
