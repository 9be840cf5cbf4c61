package node

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// ProxyProtocolV2 is the Service.ProxyProtocol value that opens every
// connection to the target with a PROXY protocol v2 header; the header's
// layout, its addresses and TLVs are documented in package proxy.
const ProxyProtocolV2 = "v2"

// sendProxyHeader writes cfg's PROXY header, if it has one, to target, a
// connection just dialed for p's stream st. On failure it closes target,
// answers st with target-unreachable, logs why and returns false.
func (n *Node) sendProxyHeader(target net.Conn, st *transport.Stream, p *peer, peerName string, cfg Service) bool {
	if cfg.ProxyProtocol == "" {
		return true
	}
	err := n.writeProxyHeader(target, streamSource(st), p.id, peerName, cfg)
	if err == nil {
		return true
	}
	target.Close()
	st.Respond(transport.StatusTargetUnreachable)
	if p.limits.shouldLogRefusal() {
		n.log.Warn("service target failed", "peer", peerName, "service", cfg.Name, "err", err)
	}
	return false
}

// writeProxyHeader writes the header for a stream from the peer id (called
// peerName here) that came from src, bounded by the target timeout.
func (n *Node) writeProxyHeader(target net.Conn, src netip.AddrPort, id identity.PeerID, peerName string, cfg Service) error {
	if cfg.ProxyProtocol != ProxyProtocolV2 {
		return fmt.Errorf("node: service %q: proxy_protocol %q is not known; use %q or \"\" (off)", cfg.Name, cfg.ProxyProtocol, ProxyProtocolV2)
	}
	h := proxy.ProxyHeader{Source: src, Destination: addrPort(target.RemoteAddr()), PeerID: id.String(), PeerName: peerName}
	b, err := h.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("node: service %q: %w", cfg.Name, err)
	}
	// A target that takes no bytes (a full socket buffer, a synchronous
	// in-process pipe) must not hold the stream for ever.
	target.SetWriteDeadline(time.Now().Add(n.cfg.TargetTimeout))
	_, err = target.Write(b)
	target.SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("node: service %q: writing the PROXY v2 header to %s: %w", cfg.Name, cfg.Target, err)
	}
	return nil
}

// streamSource is the peer's address as this node sees the session st came
// on: UDP for QUIC, TCP for the TCP carrier. A relayed session has none
// (the zero AddrPort): the circuit through the relay is not the peer's.
func streamSource(st *transport.Stream) netip.AddrPort {
	s := st.Session()
	if s == nil {
		return netip.AddrPort{}
	}
	return addrPort(s.RemoteAddr())
}

// addrPort is a's IP address and port with IPv4 unmapped, or the zero
// AddrPort for an address without them (a Unix socket, an in-process pipe).
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return netip.AddrPort{}
	}
	if !ap.Addr().IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
