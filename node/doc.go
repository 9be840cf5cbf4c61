// Package node is the daemon core: the trust list and each peer's life
// (sessions on demand or always on, one session per peer), the services
// and their access lists, and the two data paths between local
// applications and peers' services. It never imports libp2p: discovery
// comes in through the Discovery interface (discovery.go).
//
// # The life of a peer
//
// A peer's state is one field of its *peer (peer.go), under peer.mu,
// changed only by peer.transition (from startDial and relayedSession,
// adopt, the end of a dial in runDial and dialRelayed, ended and apply),
// and p2pctl shows it:
//
//	             use (DialService, DialFlow, Ping), direct or relayed dial
//	idle / disconnected ──────────────────────────▶ connecting ──handshake ok──▶ connected
//	      ▲    ▲                                      │  ▲                        │   │   │
//	      │    └───────── failed (down, fail fast) ◀──┘  └─ session ended while ──┘   │   │
//	      │                                                 a dial runs               │   │
//	      ├──────────── no stream for session_idle (idle close, graceful) ◀───────────┘   │
//	      └──────────── session ended (peer gone, crash noticed, removed) ◀───────────────┘
//
// idle is an on-demand peer with no session and nothing wrong;
// disconnected one whose last attempt or session failed (unreachable.go
// keeps why for fail-fast). An always_on peer goes from disconnected back
// to connecting by itself (the maintainer's backoff).
//
// By concern, in the order a peer meets them:
//
//   - peer.go: the peer's state and addresses.
//   - dial.go: session (get one, or dial; concurrent callers share one dial
//     through peer.dialing), runDial, and the address search itself (every
//     known address at once, at most maxDialAddrs; per address,
//     carrierRace: QUIC, then TCP after HappyEyeballsDelay).
//   - relay.go: the relayed session, when no direct path works: discovery
//     opens a libp2p stream through a circuit relay, transport runs the
//     relayed carrier on it (DialRelayed; ServeRelayed for the peer's),
//     and the session is adopted like any other (concurrent callers share
//     one relayed dial through peer.relaying).
//   - adopt.go: adopt (one session per peer; the loser of a simultaneous
//     dial is retired gracefully on both sides; a session over a better
//     carrier, QUIC > TCP > relayed, replaces the live one), retire,
//     replaces, ended.
//   - maintain.go: the maintainer of an always_on peer (redial with
//     backoff, the backoff type) and, for any peer with a live session,
//     the move back to QUIC (upgrade) and the move from a relayed session
//     to a direct one (goDirect), every QUICRetry. A new address of a peer
//     on a relayed path, such as a punched hole, is dialed at once
//     (AddAddresses, discovery.go).
//   - idle.go: sessions on demand and the idle reaper.
//   - unreachable.go, probe.go: why a peer is down, fail fast, the probe of
//     a session that stopped answering.
//   - apply.go: a reload (new trust list and services at once).
//
// # The path of one connection
//
// Outbound (outbound.go): a forward calls DialService; the SOCKS5 and
// HTTP proxies and package p2pd's Server.Dial call DialServiceAnswered,
// which waits for the service's answer. Both go through dialService, which
// picks the live session (whatever its carrier), a relayed session when
// the last direct dial failed within directRetry and libp2p has a relayed
// path (preferRelay), or a session it dials (openDialed; fail fast in
// unreachable.go), else a relayed session; and it opens a stream on that
// session whose header names the service (transport's request header). A
// stream opened early (openEarly) is watched for the peer's answer
// (watchAnswer, probe.go). UDP flows take the same path with DialFlow
// (flow.go).
//
// Inbound (inbound.go): serveStreams accepts a session's streams;
// handleStream reads the header, checks the peer's limits (limits.go) and
// the service's allow list, dials the target, answers the status and
// splices. transport holds an OK answer back briefly so that it shares a
// packet with the first payload (transport's held.go); this is why a
// client that waits for the answer before it sends (a proxy's) dials with
// DialServiceAnswered. A relayed session from discovery enters at ServeRelayed
// (relay.go), which runs the transport's handshake on it and adopts it;
// its streams are served as every session's. UDP services: serveFlow
// (flow.go).
//
// # Goroutines
//
// Every goroutine the node starts is counted in Node.wg and ends with
// Node.ctx; Close and Run's return wait for all of them. The exceptions:
// helpers a counted goroutine waits for (a dial's per-address dials and its
// lookup; serveFlow's second goroutine), and the carrier race's (dial.go):
// its two dials and the one that closes a TCP session that lost the race
// end with the dial's context, which Node.ctx ends, and send to buffered
// channels, so none blocks. Their owners:
//
//   - Run: acceptLoop (adopts inbound sessions) and reapIdle.
//   - startMaintainer: one maintain per always_on peer, or per peer while
//     its session lives.
//   - startDial: one runDial per peer at a time; relayedSession: one
//     dialRelayed per peer at a time; ServeRelayed: one per inbound
//     relayed handshake, bounded by the transport's pending budget.
//   - adopt: one serveStreams per session, which starts one handleStream
//     per inbound stream; retire and closeIdle: one per ending session.
//   - serveFlow: one goroutine per flow beside the stream's own.
//   - checkAliveAsync and watchAnswer: a probe of a suspect session, one
//     per peer at a time (peer.probing; a goroutine that finds one running
//     returns at once), each bounded by its timeout (livenessTimeout,
//     probeTimeout or four round trips).
//
// # Locks
//
// Node.mu guards the peer table, the services, discovery and the running
// and draining flags; peer.mu a peer's fields; service.mu a service's live
// streams. The order is Node.mu, then peer.mu or service.mu, never the
// reverse and never two peers at once. The tables with their own locks
// (pending, flows, whois) are leaves. No lock is held across a network
// call, a dial or a wait on a channel; transport's sessions are safe for
// concurrent use and are called without the node's locks.
//
// # Shutdown
//
// One place owns the order, Node.shutdown (node.go), which Run calls when
// its context ends: new sessions are refused; every session is told the
// node is going away and drains its streams (up to the drain timeout);
// then discovery closes (its libp2p host shares the endpoint's sockets);
// then the endpoint; then the node waits for its goroutines. The drain
// comes before discovery, not after, because a relayed session rides a
// libp2p stream of discovery's host: closing discovery first would cut
// those sessions instead of draining them. Callers outside (package p2pd's
// Server, which cmd/p2pd runs) only stop feeding discovery's records to the
// node and close their own listeners after Run returns (StartDiscovery's
// stop also calls discovery's Close, a no-op by then).
package node
