package proxy

import (
	"net"
	"net/netip"
	"time"
)

// KeepAliveFor is the TCP keep-alive period for a socket to or at addr
// ("host:port"), for net.Dialer and net.ListenConfig: off (-1) on loopback,
// where a peer cannot vanish without the kernel resetting the connection
// and the probes' four setsockopt calls per connection are pure cost; Go's
// default (0) elsewhere.
func KeepAliveFor(addr string) time.Duration {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	if host == "localhost" {
		return -1
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return -1
	}
	return 0
}

// ListenNetwork is the network to listen on addr ("host:port") with, for
// proto "tcp" or "udp": proto+"4" for an IPv4 address, proto+"6" for an
// IPv6 one, proto for a name. Go listens on "0.0.0.0" with proto alone on
// a dual-stack IPv6 socket, which would take IPv6 connections the config
// did not ask for.
func ListenNetwork(proto, addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return proto
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return proto
	case ip.Is4() || ip.Is4In6():
		return proto + "4"
	}
	return proto + "6"
}
