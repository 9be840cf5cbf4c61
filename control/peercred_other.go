//go:build !linux

package control

import "net"

// peerCred is not implemented off Linux; the server then relies on the
// socket's 0600 mode alone.
func peerCred(net.Conn) (uid uint32, pid int32, err error) {
	return 0, 0, errPeerCredUnsupported
}
