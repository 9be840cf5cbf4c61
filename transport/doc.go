// Package transport is p2pd's wire: a QUIC endpoint (quic-go, ALPN "p2pd/1")
// whose connections are authenticated by a Noise IK handshake bound to the
// connection's TLS exporter, the TCP and relayed carriers that run the same
// sessions over Noise and yamux, and the authenticated Session built on top.
//
// # Session establishment
//
// The initiator dials QUIC with a throwaway self-signed certificate that
// nobody verifies, opens the connection's first bidirectional stream and runs
// Noise_IK_25519_ChaChaPoly_BLAKE2s on it (package handshake). Each Noise
// message is framed by a 2-byte big-endian length:
//
//	+----------------+-----------------------+
//	| length (2, BE) | Noise message (length)|
//	+----------------+-----------------------+
//
// The Noise prologue is "p2pd/1 noise-ik" followed by [ExporterLen] bytes of
// TLS exporter keying material for [ExporterLabel]: a relay that terminates
// QUIC on both sides sees two different exporters and the handshake fails; a
// recorded message 1 fails on every other connection.
//
// After message 1 the responder knows the initiator's static key, and from
// its payload the initiator's Ed25519 key (handshake.Payload.Identity),
// checked against the static key before trust is decided, so that a refusal
// names the exact peer ID ([Refusal]). A key that is not trusted, a garbled
// message or payload (an identity that is not the static key's among them),
// a wrong prologue or a timeout all end the same way: the QUIC connection is
// closed with [CodeRefused] and nothing else is sent. Until message 1 is
// verified the responder accepts no other stream; until message 2 is
// verified the initiator opens none. The first stream then stays open as the
// session's control stream (ping, pong, going-away, drained).
//
// Before authentication a connection is cheap on purpose (admission.go): a
// QUIC Retry for new sources once 16 connections are half-open, message 1
// due within [Message1Timeout] of the QUIC handshake, at most
// [Config.MaxPendingHandshakes] waiting (the oldest silent one is closed for
// a newcomer), per-source and per-network shares (ratelimit.go), and
// [StreamsPerConn] streams per connection, none accepted before message 1.
//
// # Carriers
//
// A session runs over one of three carriers, preferred in this order
// ([CarrierRank]): QUIC as above ([CarrierQUIC]); TCP ([CarrierTCP]):
// Noise IK directly on a TCP connection (prologue "p2pd/1 noise-ik tcp",
// suite Noise_IK_25519_AESGCM_SHA256, a confirmation record from the
// initiator; tcp.go), then length-framed Noise records (noiseconn.go)
// carrying yamux, whose first stream is the control stream
// (tcpcarrier.go); and relayed ([CarrierRelayed]): exactly the TCP
// carrier's bytes, handshake and yamux, over one libp2p stream of protocol
// "/p2pd/overlay/2" through a circuit relay, when no direct path works
// (relayed.go; package discovery opens and accepts the stream). The
// relayed responder takes the handshake only from the peer libp2p
// authenticated. On a libp2p stream whose connection is direct, not a
// circuit, the same carrier reports [CarrierLibp2p]. Neither TCP nor
// relayed sessions have QUIC datagrams
// (UDP flows take length-framed streams there); relayed sessions have no
// lanes.
//
// # Lanes
//
// A session that needs more than [StreamsPerConn] concurrent streams adds
// QUIC connections, lanes (lane.go). A lane runs the same handshake, and its
// message 1 payload carries the session's lane key (handshake.Payload.Lane:
// TLS exporter bytes of the session's first connection for "EXPORTER-p2pd/1
// lane key", 16 bytes); the responder adds it to the established session of
// the same peer with that key, or refuses it like any failed handshake. A
// lane's id is 8 bytes of its own exporter for "EXPORTER-p2pd/1 lane id"
// (low bit set; the first connection is lane 0). Lanes carry streams only;
// the control stream and datagrams stay on the first connection, and the
// session ends with it. The side that dialed a lane retires it after a
// minute without streams (lane-close and lane-done control frames, 16-byte
// bodies: the lane's id and the streams the sender opened on it).
//
// A TCP session adds lanes for throughput: its initiator dials a second TCP
// connection with the session's first stream (at most two; a responder
// takes four), and new streams go to the lane with the fewest open, so
// that two yamux send loops seal records at once. Its lane key is
// HMAC-SHA256(handshake.Result.Secret, "p2pd/1 tcp lane key"), 16 bytes,
// and a lane's id HMAC-SHA256 of its own secret with "p2pd/1 tcp lane id"
// (8 bytes, low bit set); yamux pings keep an idle extra lane alive.
//
// # Streams
//
// Every proxied connection is one bidirectional stream that starts with a
// request header; the accepting side answers with a response header before
// any payload flows. Layouts (all integers big-endian):
//
//	request:
//	+---------+------+--------+-------------------+-------------+-------------+
//	| version | kind | svclen | service (svclen)  | extlen (2)  | ext (extlen)|
//	|   (1)   | (1)  |  (1)   |  1..MaxServiceLen |             | <= MaxExtLen|
//	+---------+------+--------+-------------------+-------------+-------------+
//
//	response:
//	+---------+--------+-------------+--------------+
//	| version | status | extlen (2)  | ext (extlen) |
//	+---------+--------+-------------+--------------+
//
// A request's ext is a list of fields, each a 1-byte type, a 1-byte length
// and that many bytes; unknown types are skipped. Type 1, "pipelined" (no
// value), is sent on streams opened by OpenStreamEarly: the opener does not
// wait for the answer, so an OK answer may wait for the first payload (or
// the FIN) and share its packet. A refusal is still sent at once. A
// response's ext is skipped: room for later fields. A header
// must arrive within the header timeout and never exceeds [MaxRequestSize] or
// [MaxResponseSize]. After an OK response the stream carries raw bytes both
// ways: a FIN is a half-close and a reset with [StreamAborted] is an abort.
//
// # UDP flows
//
// A stream of kind udp sets up a flow; its request may carry a flow id
// (extension type 2, 4 bytes), under which the flow's datagrams then ride
// QUIC DATAGRAM frames on the session's first connection:
//
//	+---+-------------------+---------+
//	| A | flow id (31 bits) | payload |
//	+---+-------------------+---------+
//
// A is 0 when the flow's opener sends, 1 when the accepting side does. A
// datagram too large for a QUIC datagram, and every datagram of a flow
// without an id (TCP and relayed carriers), is a frame on the flow's
// stream: a 2-byte big-endian length and the payload. Closing the stream
// ends the flow. flow.go has the details.
//
// # Control stream
//
// Control frames are a 1-byte type, a 2-byte length and a body of at most
// [MaxControlBody] bytes: ping (8-byte nonce), pong (the same nonce),
// going-away (8 bytes: one past the highest stream ID the sender opened on
// the session's first connection; then 16 bytes for each extra connection,
// a lane, the sender opened streams on: the lane's id and the same count)
// and
// drained (empty: all of the sender's streams are done), and idle (type 7,
// empty: the sender ends the session because nothing used it; a going-away
// follows, and neither side counts the end as a failure). Unknown types are
// skipped. drain.go describes the graceful end they make.
package transport
