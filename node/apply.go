package node

import (
	"fmt"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// Apply replaces the trust list and the services at once (a reload).
// Sessions with removed peers close at once; streams to services that a
// peer may no longer use are reset. On an error nothing changes.
func (n *Node) Apply(peers []Peer, services []Service) error {
	if err := n.apply(peers, services); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		n.startMaintainer(p)
	}
	return nil
}

func (n *Node) apply(peers []Peer, services []Service) error {
	byNoise := make(map[[32]byte]identity.PeerID, len(peers))
	byName := make(map[string]Peer, len(peers))
	for _, p := range peers {
		k, err := p.ID.PublicKey().NoisePublic()
		if err != nil {
			return fmt.Errorf("node: peer %q: %w", p.Name, err)
		}
		if p.ID == n.id {
			return fmt.Errorf("node: peer %q has this node's own ID", p.Name)
		}
		byNoise[k] = p.ID
		byName[p.Name] = p
	}
	svcs := make(map[string]*service, len(services))
	for _, s := range services {
		svcs[serviceKey(s.Name)] = newService(s)
	}

	n.mu.Lock()
	if n.peers == nil {
		n.peers = make(map[identity.PeerID]*peer)
	}
	var removed []*peer
	newPeers := make(map[identity.PeerID]*peer, len(peers))
	names := make(map[string]*peer, len(peers))
	for _, pc := range peers {
		p := n.peers[pc.ID]
		if p == nil {
			p = &peer{id: pc.ID, wake: make(chan struct{}, 1), limits: newPeerLimits()}
		}
		p.mu.Lock()
		p.name, p.addrs, p.transport, p.alwaysOn = pc.Name, append([]string(nil), pc.Addresses...), pc.Transport, pc.AlwaysOn
		if p.state != Connected && p.state != Connecting {
			p.transition(p.resting()) // a new peer, or always_on changed
		}
		p.mu.Unlock()
		newPeers[pc.ID] = p
		names[pc.Name] = p
	}
	for id, p := range n.peers {
		if _, ok := newPeers[id]; !ok {
			removed = append(removed, p)
		}
	}
	old := n.services
	// Services that keep their name keep their counters and live streams.
	for name, s := range svcs {
		if o, ok := old[name]; ok {
			o.cfg, o.allow = s.cfg, s.allow
			svcs[name] = o
		}
	}
	n.peers, n.byName, n.byNoise, n.services = newPeers, names, byNoise, svcs
	n.mu.Unlock()

	for _, p := range removed {
		p.mu.Lock()
		p.removed = true
		s := p.sess
		p.mu.Unlock()
		if s != nil {
			s.Close(transport.CodeRemoved)
		}
	}
	n.revokeStreams(old, svcs)
	return nil
}

// revokeStreams resets inbound streams whose peer lost access: the service
// is gone, or the peer is no longer on its allow list or trusted.
func (n *Node) revokeStreams(old, cur map[string]*service) {
	for name, o := range old {
		s, ok := cur[name]
		if !ok {
			o.revoke(func(string) bool { return false })
			continue
		}
		s.revoke(func(peer string) bool {
			n.mu.Lock()
			_, trusted := n.byName[peer]
			n.mu.Unlock()
			return trusted && s.allows(peer)
		})
	}
}
