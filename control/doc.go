// Package control is p2pd's control API: the types that describe a running
// daemon, the HTTP handler served on the daemon's Unix control socket, and the
// client that p2pctl uses to talk to it.
//
// The protocol is versioned JSON over HTTP/1.1 on a Unix socket. Every route
// lives under /v1:
//
//	GET  /v1/status    -> Status
//	GET  /v1/peers     -> {"peers":    [Peer, ...]}
//	GET  /v1/sessions  -> {"sessions": [Session, ...]}
//	GET  /v1/services  -> {"services": [Service, ...]}
//	GET  /v1/forwards  -> {"forwards": [Forward, ...]}
//	GET  /v1/proxies   -> {"proxies":  [Proxy, ...]}
//	GET  /v1/flows     -> {"flows":    [Flow, ...]}
//	POST /v1/ping      {"peer": "name or peer ID"} -> PingResult
//	POST /v1/reload    (empty body or {}) -> ReloadResult ({} when all applied)
//	GET  /v1/whois?addr=IP:PORT -> {"connections": [Connection, ...]}; 404 when none
//	GET  /v1/invite    -> Invite                          (trust.go, when the
//	GET  /v1/pending   -> {"pending":  [Pending, ...]}     Backend is also a
//	POST /v1/trust/add TrustAddRequest -> TrustChange      TrustBackend; 400
//	POST /v1/trust/remove {"name": "db"} -> TrustChange    for a RejectedError)
//
// Go runtime profiles (net/http/pprof) are served under DebugPrefix.
//
// Errors are {"error": "message"} with status 400 (malformed request), 404
// (unknown peer, or no connection from a whois address: the error wraps
// ErrNotFound), 405 (wrong method),
// 504 (deadline exceeded) or 500 (anything else). Request bodies are limited
// to MaxRequestBytes and must not carry unknown JSON fields.
//
// Access control is layered: Listen creates the socket 0600, and the Server
// reads every connection's peer credentials (SO_PEERCRED) and closes
// connections from any uid other than the daemon's own and root.
//
// The package never imports node, transport or config: the daemon hands the
// Server a Backend, and cmd/p2pd wires the two.
package control
