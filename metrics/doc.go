// Package metrics exposes p2pd's counters to Prometheus: one HTTP endpoint,
// /metrics, in the Prometheus text format. It is the only package that
// imports client_golang; the rest of the daemon counts in plain Go and this
// package reads those counts at scrape time (Source), except the handshake
// results, which the transport reports as they happen (ObserveHandshake).
//
// The series, all prefixed p2pd_:
//
//	build_info{version, commit, goversion}          gauge, always 1
//	sessions{peer, carrier, path}                   gauge: live sessions (carrier quic, tcp or relay; path direct or relayed)
//	peer_rtt_seconds{peer}                          gauge: the session's smoothed round-trip time
//	peer_packets_lost_total{peer}                   counter: packets the session declared lost
//	session_bytes_total{peer, direction}            counter: bytes on the wire of the live session
//	handshakes_total{result}                        counter: ok, untrusted, bad_message, timeout, overloaded
//	handshake_duration_seconds                      histogram: the Noise exchange of handshakes that succeeded
//	streams_total{service, result}                  counter: inbound streams, ok or the refusal's reason
//	bytes_total{peer, service, direction}           counter: payload of inbound streams, counted when each ends
//	forward_connections{listen, protocol}           gauge: a forward's open connections (udp: flows)
//	forward_connections_total{listen, protocol}     counter
//	forward_connections_refused_total{listen, protocol} counter: reset at the forward's cap
//	forward_errors_total{listen, protocol, kind}    counter: connections that got no stream, by cause
//	proxy_connections{listener}                     gauge: SOCKS5 or HTTP proxy client connections
//	proxy_connections_total{listener}               counter
//	proxy_connections_refused_total{listener}       counter
//	proxy_errors_total{kind, listener}              counter
//
// plus the Go runtime's go_* and the process's process_* series. direction
// is "received" (from the peer) or "sent" (to it).
//
// Label values are bounded by the configuration: a peer is its configured
// name, never its ID or address; a service its configured name, or "other"
// for names a peer asked for that this node does not have. Counters that
// belong to a session (rtt, packets lost, session bytes) start again from
// zero when the session is replaced, which rate() treats as a reset.
package metrics
