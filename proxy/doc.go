// Package proxy owns the local side of p2pd: listeners that unmodified
// programs connect to (TCP port forwards), and the splice that carries bytes
// between such a connection and an overlay stream with half-close carried
// both ways.
//
// The package never imports the node: it declares the small Dialer
// interface it needs, and cmd/p2pd wires the node in.
package proxy
