package transport

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
)

// udpConn is an endpoint socket as quic-go sees it. A send that the network
// refuses for the moment counts as a lost packet, which QUIC retransmits,
// and not as an error: quic-go closes the connection on the first send error
// it does not know, so a link down for two seconds, a route being replaced,
// a full device queue or a firewall's REJECT would end every session at
// once. WireGuard, too, treats UDP send errors as loss. Errors that mean
// something to quic-go (EMSGSIZE for path MTU discovery, EIO for GSO) and
// any other error pass through.
type udpConn struct {
	*net.UDPConn
	// last is the latest send counted as lost, for the error of a dial
	// that never got a packet out.
	last atomic.Pointer[refusal]
}

// refusal is a send the network refused.
type refusal struct {
	to  netip.AddrPort
	err error
	at  time.Time
}

func (c *udpConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (int, int, error) {
	n, oobn, err := c.UDPConn.WriteMsgUDP(b, oob, addr)
	if err != nil && transientSendError(err) {
		c.refused(addr, err)
		return len(b), len(oob), nil
	}
	return n, oobn, err
}

func (c *udpConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.UDPConn.WriteTo(b, addr)
	if err != nil && transientSendError(err) {
		if ua, ok := addr.(*net.UDPAddr); ok {
			c.refused(ua, err)
		}
		return len(b), nil
	}
	return n, err
}

func (c *udpConn) refused(to *net.UDPAddr, err error) {
	c.last.Store(&refusal{to: unmapped(to), err: err, at: time.Now()})
}

// unmapped is addr with an IPv4-mapped IPv6 address made plain IPv4, so
// that the two spellings of one address compare equal.
func unmapped(addr *net.UDPAddr) netip.AddrPort {
	ap := addr.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// refusedSince returns the error of the latest refused send to to, if it
// came after since.
func (c *udpConn) refusedSince(to *net.UDPAddr, since time.Time) error {
	r := c.last.Load()
	if r == nil || r.at.Before(since) || r.to != unmapped(to) {
		return nil
	}
	return r.err
}

// transientSendError reports whether a send failed for a reason that may
// pass: no route or interface for the destination right now, a full queue,
// or a local firewall (EPERM from an iptables REJECT/DROP on OUTPUT).
func transientSendError(err error) bool {
	for _, e := range []syscall.Errno{
		syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.ENETDOWN, syscall.EHOSTDOWN,
		syscall.EADDRNOTAVAIL, syscall.ENOBUFS, syscall.EAGAIN, syscall.EPERM, syscall.EACCES,
		syscall.ECONNREFUSED,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
