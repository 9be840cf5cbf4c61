package node

import (
	"context"
	"sort"

	"github.com/p2pd/p2pd/identity"
)

// Sources of a peer's addresses, as p2pctl shows them.
const (
	SourceStatic  = "static"  // the peer's [[peers]] entry
	SourceLearned = "learned" // the remote address of a past session
)

// Discovery is what the node asks of peer discovery; package discovery
// implements it and cmd/p2pd wires it in.
type Discovery interface {
	// FindPeer looks a peer's overlay addresses up (peer store, then DHT).
	FindPeer(ctx context.Context, id identity.PeerID) ([]string, error)
	// Learned records the address a live session came from.
	Learned(id identity.PeerID, addr string)
}

// SetDiscovery wires discovery in; call it before Run. If d has a Close
// method, the node's shutdown calls it before closing the sockets d shares.
func (n *Node) SetDiscovery(d Discovery) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.disc = d
}

func (n *Node) discovery() Discovery {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.disc
}

// AddAddresses records that a source found peer id at addrs. Records for
// peers that are not trusted are dropped. A peer with addresses is kept
// connected from then on.
func (n *Node) AddAddresses(id identity.PeerID, source string, addrs []string) {
	if len(addrs) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[id]
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.found == nil {
		p.found = make(map[string][]string)
	}
	p.found[source] = mergeAddrs(p.found[source], addrs)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	if n.ctx.Err() == nil && n.running {
		n.startMaintainer(p)
	}
}

// mergeAddrs puts fresh addresses first and keeps a bounded history.
func mergeAddrs(old, fresh []string) []string {
	const maxPerSource = 8
	out := append([]string(nil), fresh...)
	for _, a := range old {
		if !contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) > maxPerSource {
		out = out[:maxPerSource]
	}
	return out
}

// sources lists where p's addresses came from. Called with p.mu held.
func (p *peer) sources() []string {
	var out []string
	if len(p.addrs) > 0 {
		out = append(out, SourceStatic)
	}
	for s, a := range p.found {
		if len(a) > 0 {
			out = append(out, s)
		}
	}
	if p.learned != "" && !contains(out, SourceLearned) {
		out = append(out, SourceLearned)
	}
	sort.Strings(out)
	return out
}

// lookup asks discovery for a peer with no known address.
func (n *Node) findPeer(ctx context.Context, p *peer) []string {
	d := n.discovery()
	if d == nil {
		return nil
	}
	addrs, err := d.FindPeer(ctx, p.id)
	if err != nil {
		n.log.Debug("peer lookup failed", "peer", p.name, "err", err)
		return nil
	}
	n.AddAddresses(p.id, "dht", addrs)
	return addrs
}

// Trusted reports whether id is in the trust list. Safe for concurrent use.
func (n *Node) Trusted(id identity.PeerID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.peers[id]
	return ok
}
