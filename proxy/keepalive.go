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
