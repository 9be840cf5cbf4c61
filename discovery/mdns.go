package discovery

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/p2pd/p2pd/identity"
)

// MDNSService is the DNS-SD service name p2pd announces and browses on the
// LAN; a project-specific name keeps other libp2p programs (which use
// "_p2p._udp") out of each other's way.
const MDNSService = "_p2pd._udp"

func (d *Discovery) startMDNS() {
	svc := mdns.NewMdnsService(d.host, MDNSService, mdnsNotifee{d})
	if err := svc.Start(); err != nil {
		// A host without a multicast interface still runs; other sources work.
		d.log.Warn("mdns not started", "err", err)
		return
	}
	d.mdns = svc
	d.wg.Add(1)
	go d.run(d.mdnsLoop)
}

// mdnsNotifee receives announcements. libp2p calls HandlePeerFound on a new
// goroutine per announcement; it hands the announcement over without
// blocking and is counted in d.finders so that Close can wait for it.
type mdnsNotifee struct{ d *Discovery }

func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	d := n.d
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.finders.Add(1)
	d.mu.Unlock()
	defer d.finders.Done()
	select {
	case d.found <- ai:
	default:
		d.log.Debug("mdns announcements arrive faster than handled; one dropped", "peer", ai.ID.String())
	}
}

func (d *Discovery) mdnsLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ai := <-d.found:
			d.handleFound(ai)
		}
	}
}

// handleFound turns an announcement into a record. Addresses that cannot
// belong to another host are dropped. A peer that is not trusted is only
// remembered (bounded), so that a reload that trusts it can use it.
func (d *Discovery) handleFound(ai peer.AddrInfo) {
	if ai.ID == d.host.ID() {
		return
	}
	id, err := fromPeer(ai.ID)
	if err != nil {
		return
	}
	ai.Addrs = directAddrs(ai.Addrs, lanUsable)
	if len(ai.Addrs) == 0 {
		return
	}
	ai.Addrs = capAddrs(ai.Addrs, maxMDNSAddrs)
	if !d.cfg.Trusted(id) {
		d.remember(id, overlayAddrs(ai.Addrs, nil))
		return
	}
	d.trustedFound(ai)
}

// trustedFound reports a trusted peer found on the LAN and connects the
// host to it, so that identify and the DHT work on the LAN too.
func (d *Discovery) trustedFound(ai peer.AddrInfo) {
	id, err := fromPeer(ai.ID)
	if err != nil {
		return
	}
	d.em.push(Record{Peer: id, Addrs: overlayAddrs(ai.Addrs, nil), Source: SourceMDNS})
	d.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.AddressTTL)
	d.requestConnect(ai)
}

// remember keeps the LAN addresses of an untrusted peer, at most
// maxSightings peers (an arbitrary one makes room).
func (d *Discovery) remember(id identity.PeerID, addrs []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.sightings[id]; !ok && len(d.sightings) >= maxSightings {
		for k := range d.sightings {
			delete(d.sightings, k)
			break
		}
	}
	d.sightings[id] = addrs
}

// sighted returns the LAN addresses remembered for id.
func (d *Discovery) sighted(id identity.PeerID) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.sightings[id]...)
}
