package discovery

import (
	"net/netip"
	"slices"
	"sync"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// maxObservers bounds the observations kept; the oldest observer goes
// first.
const maxObservers = 16

// Mapping is what this node's observations say about the NAT in front of
// it, in RFC 4787 terms.
type Mapping int

const (
	// MappingUnknown: fewer than two direct peers on different IPs have
	// reported this node's address.
	MappingUnknown Mapping = iota
	// MappingIndependent: every observer saw the same address and port,
	// as behind no NAT or a cone NAT; hole punching can work.
	MappingIndependent
	// MappingDependent: observers saw different ports — a symmetric NAT
	// that maps each destination anew. The address a peer learns from the
	// relay is not the one its packets would meet, so hole punching fails
	// unless the other side lets unknown senders in.
	MappingDependent
)

func (m Mapping) String() string {
	switch m {
	case MappingIndependent:
		return "endpoint-independent"
	case MappingDependent:
		return "endpoint-dependent (symmetric)"
	}
	return "unknown"
}

// observations are this node's own public addresses as the peers of its
// direct libp2p connections reported them in identify (their "observed
// address"), one per observer IP. libp2p's host uses observed addresses
// only after four observers agree; a private overlay has one or two
// public peers (a relay, a bootstrap node), so hole punching takes them
// from one.
type observations struct {
	mu    sync.Mutex // guards seen and order
	seen  map[netip.Addr]netip.AddrPort
	order []netip.Addr // observers, oldest first
}

func newObservations() *observations {
	return &observations{seen: map[netip.Addr]netip.AddrPort{}}
}

// add records that observer saw this node at observed. Observations of
// relayed connections, and of or by non-public addresses, are ignored:
// they say nothing about the NAT.
func (o *observations) add(observer, observed ma.Multiaddr) {
	by, ok := overlayAddr(observer)
	if !ok || !manet.IsPublicAddr(observer) {
		return
	}
	at, ok := overlayAddr(observed)
	if !ok || !manet.IsPublicAddr(observed) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	ip := by.Addr()
	if _, had := o.seen[ip]; had {
		o.order = slices.DeleteFunc(o.order, func(a netip.Addr) bool { return a == ip })
	}
	o.seen[ip] = at
	o.order = append(o.order, ip)
	for len(o.order) > maxObservers {
		delete(o.seen, o.order[0])
		o.order = o.order[1:]
	}
}

// addrs returns the distinct observed addresses as /quic-v1 multiaddrs.
func (o *observations) addrs() []ma.Multiaddr {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []ma.Multiaddr
	for _, ip := range o.order {
		if a, err := quicMultiaddr(o.seen[ip]); err == nil && !ma.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// mapping classifies the NAT from the IPv4 observations.
func (o *observations) mapping() Mapping {
	o.mu.Lock()
	defer o.mu.Unlock()
	var first netip.AddrPort
	n := 0
	for _, ip := range o.order {
		at := o.seen[ip]
		if !at.Addr().Is4() {
			continue
		}
		if n > 0 && at != first {
			return MappingDependent
		}
		first = at
		n++
	}
	if n < 2 {
		return MappingUnknown
	}
	return MappingIndependent
}

// addrsMapping classifies a peer's NAT from the addresses it sent in a
// hole punch: one IP with several ports means its observers disagreed.
func addrsMapping(addrs []ma.Multiaddr) Mapping {
	ports := map[netip.Addr]netip.AddrPort{}
	for _, a := range addrs {
		ap, ok := overlayAddr(a)
		if !ok || !ap.Addr().Is4() {
			continue
		}
		if prev, had := ports[ap.Addr()]; had && prev != ap {
			return MappingDependent
		}
		ports[ap.Addr()] = ap
	}
	return MappingUnknown
}

// announceObserved wraps the host's AddrsFactory af: once two observers on
// different IPs agree on this node's public address (no NAT, or a NAT that
// keeps one mapping for every destination), the host announces it too, so
// that peers try it directly — the direct dial that precedes a hole punch,
// and peers that find this node in the DHT. libp2p itself waits for four.
func announceObserved(af func([]ma.Multiaddr) []ma.Multiaddr, o *observations) func([]ma.Multiaddr) []ma.Multiaddr {
	return func(addrs []ma.Multiaddr) []ma.Multiaddr {
		out := af(addrs)
		if o.mapping() != MappingIndependent {
			return out
		}
		for _, a := range o.addrs() {
			if !ma.Contains(out, a) {
				out = append(out, a)
			}
		}
		return out
	}
}
