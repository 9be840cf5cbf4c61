package proxy

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// The PROXY protocol v2 header (haproxy's proxy-protocol.txt, section 2.2)
// that a node writes to a service target before any payload; the layout,
// the address rules and the TLV types are in the package doc.

// proxySignature opens every PROXY protocol v2 header.
const proxySignature = "\r\n\r\n\x00\r\nQUIT\n"

// Sizes of the header's parts.
const (
	proxySigLen       = len(proxySignature)
	proxyFixedLen     = proxySigLen + 1 + 1 + 2 // signature, version/command, family, length
	proxyIPv4AddrsLen = 4 + 4 + 2 + 2           // source, destination, source port, destination port
	proxyIPv6AddrsLen = 16 + 16 + 2 + 2
	proxyTLVHeadLen   = 1 + 2 // type, length
	// MaxProxyHeaderLen is the longest header the format allows: the
	// length field counts at most 65535 bytes after the fixed part.
	MaxProxyHeaderLen = proxyFixedLen + 0xFFFF
)

// Byte 13 and 14 of the header.
const (
	proxyVersionProxy = 0x21 // version 2, command PROXY
	proxyFamUnspec    = 0x00 // AF_UNSPEC, transport unspecified: no addresses follow
	proxyFamTCP4      = 0x11 // AF_INET, STREAM
	proxyFamTCP6      = 0x21 // AF_INET6, STREAM
)

// TLV types p2pd sends, from the range the specification leaves to
// applications (PP2_TYPE_MIN_CUSTOM 0xE0 to PP2_TYPE_MAX_CUSTOM 0xEF).
const (
	ProxyTLVPeerID   = 0xE0 // the peer's ID, "12D3KooW...", ASCII
	ProxyTLVPeerName = 0xE1 // the peer's name in this node's [[peers]], UTF-8
)

// ErrProxyHeaderTooLong reports TLV values that do not fit the header's
// 16-bit length field.
var ErrProxyHeaderTooLong = errors.New("proxy: PROXY v2 header longer than 65535 bytes after its fixed part")

// ProxyHeader is what a PROXY protocol v2 header tells a service's target
// about a connection that came through the overlay. The zero value is a
// header with AF_UNSPEC and no TLVs.
type ProxyHeader struct {
	// Source is the address the peer's session comes from as this node
	// sees it; the zero AddrPort (unknown, as on a relayed path) gives
	// AF_UNSPEC.
	Source netip.AddrPort
	// Destination is the target's address; the zero AddrPort (a unix:
	// target) is sent as the unspecified address of Source's family, port 0.
	Destination netip.AddrPort
	PeerID      string // TLV ProxyTLVPeerID, omitted when ""
	PeerName    string // TLV ProxyTLVPeerName, omitted when ""
}

// AppendBinary appends h's header to b: command PROXY, the family of the
// addresses (TCP over IPv4 when both are IPv4, else TCP over IPv6 with IPv4
// addresses mapped, AF_UNSPEC without a Source), then the TLVs.
func (h ProxyHeader) AppendBinary(b []byte) ([]byte, error) {
	src, dst := h.Source, h.Destination
	fam, addrLen := byte(proxyFamUnspec), 0
	if src.IsValid() {
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if dst.IsValid() {
			dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
		}
		if src.Addr().Is4() && (!dst.IsValid() || dst.Addr().Is4()) {
			fam, addrLen = proxyFamTCP4, proxyIPv4AddrsLen
		} else {
			fam, addrLen = proxyFamTCP6, proxyIPv6AddrsLen
		}
	}
	n := addrLen
	for _, v := range []string{h.PeerID, h.PeerName} {
		if v != "" {
			n += proxyTLVHeadLen + len(v)
		}
	}
	if n > 0xFFFF {
		return b, ErrProxyHeaderTooLong
	}
	b = append(b, proxySignature...)
	b = append(b, proxyVersionProxy, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	switch fam {
	case proxyFamTCP4:
		s, d := src.Addr().As4(), [4]byte{}
		if dst.IsValid() {
			d = dst.Addr().As4()
		}
		b = append(append(b, s[:]...), d[:]...)
	case proxyFamTCP6:
		s, d := src.Addr().As16(), [16]byte{}
		if dst.IsValid() {
			d = dst.Addr().As16()
		}
		b = append(append(b, s[:]...), d[:]...)
	}
	if fam != proxyFamUnspec {
		b = binary.BigEndian.AppendUint16(b, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port()) // 0 for the zero AddrPort
	}
	b = appendTLV(b, ProxyTLVPeerID, h.PeerID)
	b = appendTLV(b, ProxyTLVPeerName, h.PeerName)
	return b, nil
}

// appendTLV appends one TLV, or nothing for an empty value. The caller
// has checked that the length fits.
func appendTLV(b []byte, typ byte, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}
