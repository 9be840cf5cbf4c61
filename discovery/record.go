package discovery

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pd/p2pd/identity"
)

// Source says how an address was found. p2pctl shows it.
type Source string

// Sources of addresses.
const (
	SourceStatic  Source = "static"  // [[peers]] addresses in the config (the node's own records)
	SourceMDNS    Source = "mdns"    // an mDNS announcement on the LAN
	SourceDHT     Source = "dht"     // a lookup in the private DHT
	SourceLearned Source = "learned" // the observed address of a live session, persisted
)

// Record says that a peer is at these overlay addresses. Addrs are UDP
// "ip:port" strings ("192.0.2.7:4242", "[2001:db8::7]:4242"), ready for
// transport.Endpoint.Dial; because the overlay shares the libp2p host's UDP
// port, they are the peer's libp2p /quic-v1 addresses with the protocol parts
// taken off.
type Record struct {
	Peer   identity.PeerID
	Addrs  []string
	Source Source
}

// Multiaddr component sizes.
const (
	ip4Len  = 4
	ip6Len  = 16
	portLen = 2
)

// overlayAddr maps a direct QUIC multiaddr, /ip4/X/udp/P/quic-v1 or
// /ip6/X/udp/P/quic-v1, optionally followed by /p2p/<id>, to the overlay
// endpoint X:P. Anything else — relayed (/p2p-circuit), DNS names, zones,
// other transports — reports false.
func overlayAddr(a ma.Multiaddr) (netip.AddrPort, bool) {
	if len(a) < 3 || len(a) > 4 || a[2].Code() != ma.P_QUIC_V1 || len(a) == 4 && a[3].Code() != ma.P_P2P {
		return netip.AddrPort{}, false
	}
	ap, ok := ipPort(a)
	if !ok || a[1].Code() != ma.P_UDP || ap.Port() == 0 {
		return netip.AddrPort{}, false
	}
	return ap, true
}

// ipPort is the IP and the UDP or TCP port a multiaddr starts with
// (/ip4/X/udp/P…, /ip6/X/tcp/P…), port 0 included.
func ipPort(a ma.Multiaddr) (netip.AddrPort, bool) {
	if len(a) < 2 {
		return netip.AddrPort{}, false
	}
	var ip netip.Addr
	switch c := a[0]; c.Code() {
	case ma.P_IP4:
		if len(c.RawValue()) != ip4Len {
			return netip.AddrPort{}, false
		}
		ip = netip.AddrFrom4([ip4Len]byte(c.RawValue()))
	case ma.P_IP6:
		if len(c.RawValue()) != ip6Len {
			return netip.AddrPort{}, false
		}
		ip = netip.AddrFrom16([ip6Len]byte(c.RawValue())).Unmap()
	default:
		return netip.AddrPort{}, false
	}
	if c := a[1].Code(); c != ma.P_UDP && c != ma.P_TCP || len(a[1].RawValue()) != portLen {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(a[1].RawValue())), true
}

// quicMultiaddr is the inverse of overlayAddr: /ip4/X/udp/P/quic-v1.
func quicMultiaddr(ap netip.AddrPort) (ma.Multiaddr, error) {
	family := "ip4"
	if ap.Addr().Is6() {
		family = "ip6"
	}
	a, err := ma.NewMultiaddr(fmt.Sprintf("/%s/%s/udp/%d/quic-v1", family, ap.Addr().Unmap(), ap.Port()))
	if err != nil {
		return nil, fmt.Errorf("discovery: address %s: %w", ap, err)
	}
	return a, nil
}

// overlayAddrs converts the direct QUIC addresses among addrs to overlay
// addresses, keeping their order, dropping duplicates and every address
// keep rejects (keep may be nil).
func overlayAddrs(addrs []ma.Multiaddr, keep func(netip.AddrPort) bool) []string {
	var out []string
	seen := make(map[netip.AddrPort]bool, len(addrs))
	for _, a := range addrs {
		ap, ok := overlayAddr(a)
		if !ok || seen[ap] || (keep != nil && !keep(ap)) {
			continue
		}
		seen[ap] = true
		out = append(out, ap.String())
	}
	return out
}

// dialable reports whether ap can be dialled at all: not unspecified, not
// multicast, not an IPv6 link-local address (which needs a zone that an
// address record cannot carry).
func dialable(ap netip.AddrPort) bool {
	ip := ap.Addr()
	return ap.Port() != 0 && ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast() &&
		!(ip.Is6() && ip.IsLinkLocalUnicast())
}

// lanUsable reports whether an address announced on the LAN can belong to
// another host: dialable and not loopback. mDNS announcements carry every
// interface address of the sender, including 127.0.0.1, which on the
// receiver would name the receiver itself.
func lanUsable(ap netip.AddrPort) bool {
	return dialable(ap) && !ap.Addr().IsLoopback()
}
