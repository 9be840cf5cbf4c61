package discovery

import (
	"net"
	"net/netip"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// boundAddrs corrects what the host announces for sockets bound to a
// specific IP. quicreuse only shares sockets it believes unspecified (see
// lentConn), so libp2p listens on /ip4/0.0.0.0/udp/P and expands that to
// every interface address with port P. For a socket bound to X:P only X:P
// is real: the factory drops the other local interface addresses with port P
// and keeps everything else (observed addresses, relay addresses).
type boundAddrs struct {
	bound []netip.AddrPort // sockets bound to a specific IP

	mu      sync.Mutex // guards local and fetched
	local   map[netip.Addr]bool
	fetched time.Time
}

// interfaceCacheTTL is how long the list of local interface addresses is
// reused; the host asks for its addresses often.
const interfaceCacheTTL = 30 * time.Second

func newBoundAddrs(sh *sharing) *boundAddrs {
	b := &boundAddrs{}
	for _, sock := range sh.sockets {
		la := sock.Conn.LocalAddr().(*net.UDPAddr)
		if ap := la.AddrPort(); !ap.Addr().IsUnspecified() {
			b.bound = append(b.bound, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	return b
}

// factory is the host's AddrsFactory.
func (b *boundAddrs) factory(addrs []ma.Multiaddr) []ma.Multiaddr {
	if len(b.bound) == 0 {
		return addrs
	}
	local := b.localIPs()
	out := make([]ma.Multiaddr, 0, len(addrs)+len(b.bound))
	for _, a := range addrs {
		if ap, ok := overlayAddr(a); ok && local[ap.Addr()] && b.shadowed(ap) {
			continue
		}
		out = append(out, a)
	}
	for _, ap := range b.bound {
		if a, err := quicMultiaddr(ap); err == nil && !ma.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// shadowed reports whether ap has the port and family of a bound socket but
// not its IP.
func (b *boundAddrs) shadowed(ap netip.AddrPort) bool {
	for _, s := range b.bound {
		if s.Port() == ap.Port() && s.Addr().Is4() == ap.Addr().Is4() && s.Addr() != ap.Addr() {
			return true
		}
	}
	return false
}

func (b *boundAddrs) localIPs() map[netip.Addr]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.local != nil && time.Since(b.fetched) < interfaceCacheTTL {
		return b.local
	}
	local := map[netip.Addr]bool{}
	ifaddrs, _ := net.InterfaceAddrs()
	for _, ia := range ifaddrs {
		if n, ok := ia.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				local[ip.Unmap()] = true
			}
		}
	}
	b.local, b.fetched = local, time.Now()
	return local
}
