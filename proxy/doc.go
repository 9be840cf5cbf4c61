// Package proxy owns the local side of p2pd: listeners that unmodified
// programs connect to (TCP port forwards, the SOCKS5 server and the HTTP
// proxy), and the splice that carries bytes between such a connection and
// an overlay stream with half-close carried both ways.
//
// The SOCKS5 server and the HTTP proxy (Server) reach any peer's service by
// the name <service>.<peer>.p2p; their wire formats and reply codes are
// documented in socks5.go and httpproxy.go, the names in p2pname.go.
//
// The package never imports the node: it declares the small interfaces it
// needs (Dialer, Overlay), and cmd/p2pd wires the node in, together with
// the Classifier that tells the kinds of the node's errors.
package proxy
