package node

import (
	"context"
	"net"
	"slices"
	"sort"

	"github.com/p2pd/p2pd/identity"
)

// Sources of a peer's addresses, as p2pctl shows them.
const (
	SourceStatic  = "static"  // the peer's [[peers]] entry
	SourceLearned = "learned" // the remote address of a past session
	// SourceMDNS and SourceDHT are discovery's sources of those names.
	SourceMDNS = "mdns"
	SourceDHT  = "dht"
	// SourcePeerstore marks addresses that libp2p's peer store held when
	// the node, not in the DHT, looked the peer up (from identify, a relay,
	// a past connection).
	SourcePeerstore = "peerstore"
)

// Discovery is everything the node asks of peer discovery, declared here
// and nowhere else; package discovery implements it (wiring.go adapts it)
// and the node finds no method by type assertion. The node calls it
// without holding its own locks; discovery feeds the node through
// AddAddresses and ServeRelayed, never from inside one of these calls.
type Discovery interface {
	// FindPeer looks a peer's overlay addresses up (peer store, then DHT).
	FindPeer(ctx context.Context, id identity.PeerID) ([]string, error)
	// Learned records the address a live session came from.
	Learned(id identity.PeerID, addr string)
	// Forget drops what discovery holds for a peer whose session went
	// stale (cached addresses, libp2p connections), so the next lookup is
	// fresh.
	Forget(id identity.PeerID)
	// DHTEnabled reports whether lookups reach the DHT (FOUND-BY dht) or
	// only libp2p's peer store.
	DHTEnabled() bool
	// HasRelays reports whether relays are configured: errors mention the
	// relayed path only then.
	HasRelays() bool
	// OpenRelayed opens a libp2p stream to id, through a circuit relay,
	// for a relayed session when no direct path exists (relay.go).
	OpenRelayed(ctx context.Context, id identity.PeerID) (net.Conn, error)
	// RelayPath reports whether libp2p holds a relayed connection to id,
	// and through which relay.
	RelayPath(id identity.PeerID) (relay string, ok bool)
	// DirectReason says why a relayed peer has no direct path yet (hole
	// punching: "symmetric NAT on both sides: staying relayed"), or "".
	DirectReason(id identity.PeerID) string
	// Close stops discovery; the node's shutdown calls it before closing
	// the sockets discovery shares.
	Close() error
}

// SetDiscovery wires discovery in; call it before Run. The node's shutdown
// calls d.Close before closing the sockets d shares.
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
// peers that are not trusted are dropped. An always_on peer with addresses
// is kept connected from then on (startMaintainer); an on-demand one only
// while its session lives, and a new address is dialed at once only for a
// peer on a relayed path (below).
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
	if source == SourceMDNS || source == SourceStatic {
		// mDNS found it: the peer store was only its echo.
		p.found[SourcePeerstore] = slices.DeleteFunc(p.found[SourcePeerstore], func(a string) bool { return contains(addrs, a) })
	}
	onDemand := !p.alwaysOn
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	if n.ctx.Err() == nil && n.running {
		n.startMaintainer(p)
		// A peer on a relayed session, or an on-demand one that libp2p
		// reaches through a relay: a new address (often a punched hole)
		// is dialed at once, and a direct session replaces the relayed
		// one (replaces), so new streams go direct.
		cur := p.current()
		onRelay := cur != nil && isRelayed(cur)
		if d := n.disc; d != nil && (onRelay || onDemand && cur == nil) {
			n.wg.Add(1)
			go func() { // discovery is not called under n.mu
				defer n.wg.Done()
				if _, relayed := d.RelayPath(id); onRelay || relayed {
					n.startDial(p)
				}
			}()
		}
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

// findPeer asks discovery where p is. What the lookup returns beyond the
// configured and mDNS addresses came from libp2p's peer store or a DHT
// lookup: it is recorded as SourceDHT when the node is in the DHT (which
// fills the peer store), as SourcePeerstore otherwise.
func (n *Node) findPeer(ctx context.Context, p *peer) ([]string, error) {
	d := n.discovery()
	if d == nil {
		return nil, nil
	}
	addrs, err := d.FindPeer(ctx, p.id)
	if err != nil {
		n.log.Debug("peer lookup failed", "peer", p.nameNow(), "err", err)
		return nil, err
	}
	source := SourcePeerstore
	if d.DHTEnabled() {
		source = SourceDHT
	}
	p.mu.Lock()
	var fresh []string
	for _, a := range addrs {
		if !contains(p.addrs, a) && !contains(p.found[SourceMDNS], a) {
			fresh = append(fresh, a)
		}
	}
	p.mu.Unlock()
	n.AddAddresses(p.id, source, fresh)
	return addrs, nil
}

// Trusted reports whether id is in the trust list. Safe for concurrent use.
func (n *Node) Trusted(id identity.PeerID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.peers[id]
	return ok
}
