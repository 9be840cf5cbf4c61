// Package proxy owns the local side of p2pd: listeners that unmodified
// programs connect to (TCP port forwards, the SOCKS5 server and the HTTP
// proxy), and the splice that carries bytes between such a connection and
// an overlay stream with half-close carried both ways.
//
// The SOCKS5 server and the HTTP proxy (Server) reach any peer's service by
// the name <service>.<peer>.p2p; their wire formats and reply codes are
// documented in socks5.go and httpproxy.go, the names in p2pname.go.
//
// # PROXY protocol v2 toward a service target
//
// A service with proxy_protocol = "v2" gets a PROXY protocol v2 header
// (ProxyHeader, proxyproto.go) as the first bytes of every connection the
// node makes to its target, before any payload:
//
//	offset  size  field
//	0       12    signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
//	12      1     0x21: version 2, command PROXY
//	13      1     family: 0x11 TCP over IPv4, 0x21 TCP over IPv6, 0x00 AF_UNSPEC
//	14      2     length of what follows, big-endian
//	16      12|36 IPv4: src, dst (4 each), src port, dst port (2 each);
//	              IPv6: src, dst (16 each), ports; AF_UNSPEC: nothing
//	...           TLVs: type (1), length (2, big-endian), value
//
// The source is the peer's address as this node sees the session the
// stream came on: the UDP address for QUIC, the TCP address for the TCP
// carrier. The destination is the target's address. Both IPv4 gives TCP
// over IPv4; otherwise TCP over IPv6 with IPv4 addresses mapped
// (::ffff:a.b.c.d). A unix: target has no IP address: the destination is
// then the unspecified address of the source's family with port 0, so that
// a receiver such as nginx still learns the peer's address. A stream that
// came over a libp2p relay has no source address the node can vouch for:
// its header has family AF_UNSPEC and no address block, only the TLVs.
//
// TLV types, from the range the specification leaves to applications:
//
//	0xE0  ProxyTLVPeerID    the peer's ID as text, "12D3KooW..."
//	0xE1  ProxyTLVPeerName  the peer's name in this node's [[peers]]
//
// # Unix socket forwards
//
// A forward whose Listen is "unix:/path" listens on a Unix socket, made
// mode 0660 (the daemon's group keeps access). A socket file left by a dead
// process (one that refuses connections) is removed first; a live socket or
// any other file at the path is an error that names it. The file is
// removed when the forward closes, at shutdown or when a reload drops it.
//
// The package never imports the node: it declares the small interfaces it
// needs (Dialer, Overlay), and cmd/p2pd wires the node in, together with
// the Classifier that tells the kinds of the node's errors.
package proxy
