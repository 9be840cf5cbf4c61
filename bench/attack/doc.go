// Package attack holds the hostile clients of p2pd's attack tests
// (RELIABILITY.md B10, issue 8 "Hostile network"): tools written by us, for
// our own test networks, each bounded in count and in time.
//
//   - [Flood] sends QUIC v1 Initial packets from forged IPv4 source
//     addresses through a raw socket: valid Initials (a real ClientHello
//     with ALPN "p2pd/1", a fresh destination connection ID each) or
//     garbage with an Initial's long header.
//   - [Silent] completes QUIC handshakes from many local addresses and
//     then sends nothing, replacing every connection the server closes.
//   - [Streams] completes a QUIC handshake, writes one byte on stream 0 and
//     opens every bidirectional stream the server allows before Noise
//     message 1, which it never sends.
//   - [Dials] is the trusted peer's side of the measurement: new sessions
//     on a schedule, each on a fresh endpoint, timed.
//
// Each tool sends only to the one target it is given; the tests run them in
// network namespaces they create (cmd/p2pd-attack is the command line).
// A tool returns when its duration is over or its context is done, and its
// result says what it sent and what the server did.
package attack
