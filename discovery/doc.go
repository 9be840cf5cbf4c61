// Package discovery finds peers' overlay addresses. It owns the node's
// libp2p host — the only place in p2pd that imports go-libp2p — and the
// sources built on it, all feeding one stream of Records ("peer X is at
// these addresses"):
//
//   - mdns: announcements on the LAN (service MDNSService), from trusted
//     peers, without loopback or unspecified addresses;
//   - dht: lookups in a private Kademlia DHT (protocol prefix DHTPrefix,
//     server mode, bootstrap nodes from the config), made by FindPeer;
//   - learned: the observed address of a live session (Learned), persisted
//     in the state directory (PeersFile) and emitted again at start; and the
//     remote address of every direct libp2p connection of a trusted peer
//     (its host dials from its overlay port), not persisted — this is how a
//     path that hole punching opened reaches the overlay.
//
// Static addresses from the config are the node's own records (SourceStatic).
//
// # One UDP port
//
// The libp2p host has the node's Ed25519 key, so its peer ID is the node's,
// and it shares the overlay's UDP sockets. The transport endpoint (made with
// transport.Config.Shared) opens the sockets and a quic.Transport on each
// without listening. New builds the host with libp2p.QUICReuse and a
// quicreuse.ConnManager to which every socket is lent (LendTransport) before
// the host starts; the host's QUIC transport then listens on
// /ip4/0.0.0.0/udp/P/quic-v1 (and ip6), which quicreuse maps to the lent
// transport of port P instead of binding a socket, and dials from it.
// quicreuse starts one quic-go listener per socket for all ALPNs and routes
// each connection by the ALPN the client offered; New registers the overlay's
// ALPN ("p2pd/1", with the endpoint's TLS config) on the same socket and hands
// that listener to the endpoint's Serve. So a peer's libp2p /quic-v1 address
// is its overlay address, and what libp2p learns about the port — observed
// addresses, AutoNAT, hole punching — serves the overlay too.
//
// libp2p's resource manager keeps its hooks on the shared port: it may ask
// for a Retry, and libp2p's QUIC listener opens a connection's scope once
// its handshake is done (the per-IP count of live connections holds there;
// libp2p's per-IP rate limit is off, see connRateLimiter). Before that, the
// endpoint's admission bounds every source on the shared sockets.
//
// # A private host
//
// A connection gater admits only trusted peers (Config.Trusted, asked on
// every connection), the bootstrap nodes and the relays. The host runs
// AutoNAT v2, a circuit relay v2 client, static relays from the config and,
// when asked, a relay service for trusted peers. Discovery runs hole
// punching (DCUtR) beside it (punch.go): with the addresses its direct
// peers observed, retried while a path stays relayed, and with a reason
// when it fails (DirectReason).
//
// When no direct path exists, OpenStream and HandleStreams give the
// libp2p stream (OverlayProtocol), typically through a circuit relay, on
// which the transport runs a relayed session (the TCP carrier's Noise IK
// and yamux); the stream is a net.Conn whose RemoteAddr is a
// transport.RelayAddr naming the relay, and it keeps its connection from
// the connection manager while the session lives. RelayPath says whether a
// peer is reached through a relay and which.
//
// Close stops everything New started; close the Discovery before the
// endpoint.
package discovery
