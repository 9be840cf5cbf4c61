package transport

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Per-source limits on inbound handshakes. A source is an IPv4 address or
// an IPv6 /64 (one host's share of a network), and each belongs to a coarser
// network (IPv4 /24, IPv6 /48) with a budget of its own, so that an attacker
// with a whole prefix of addresses still gets one network's share. Only
// proven addresses are counted: a connection whose QUIC handshake completed,
// or one that answered a Retry. Past a limit a connection is refused before
// any Noise work. Loopback sources are not limited: a local process has
// cheaper ways to load the machine, and benchmarks and tests dial from there.
const (
	handshakesPerSecond = 50 // at most 50 initiations/s from one source
	handshakeBurst      = 50
	// pendingPerSource is how many handshakes one source may have under
	// way at once, so that a source that completes QUIC handshakes and then
	// stays silent cannot take the endpoint's whole pending budget
	// (MaxPendingHandshakes) from everyone else.
	pendingPerSource = 8
	// pendingPerNetwork is the same for a source's coarser network.
	pendingPerNetwork = 4 * pendingPerSource
	// maxSources bounds the table; past it, sources whose bucket has
	// refilled are forgotten (they would start full anyway).
	maxSources = 4096

	sourceBits4, networkBits4 = 32, 24
	sourceBits6, networkBits6 = 64, 48
)

// sourceLimiter is a token bucket per source and a count of handshakes under
// way per source and per network.
type sourceLimiter struct {
	rate, burst float64
	maxPending  int

	mu      sync.Mutex // guards buckets and pending
	buckets map[netip.Prefix]*bucket
	pending map[netip.Prefix]int // by source and by network prefix
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newSourceLimiter(rate, burst float64, maxPending int) *sourceLimiter {
	return &sourceLimiter{rate: rate, burst: burst, maxPending: maxPending,
		buckets: make(map[netip.Prefix]*bucket), pending: make(map[netip.Prefix]int)}
}

// source is addr's source and network prefixes, and false for addresses that
// are not limited.
func source(addr net.Addr) (src, network netip.Prefix, limited bool) {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip = a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		ip = a.AddrPort().Addr().Unmap()
	default:
		return netip.Prefix{}, netip.Prefix{}, false
	}
	if ip.IsLoopback() || !ip.IsValid() {
		return netip.Prefix{}, netip.Prefix{}, false
	}
	sb, nb := sourceBits4, networkBits4
	if ip.Is6() {
		sb, nb = sourceBits6, networkBits6
	}
	src, _ = ip.Prefix(sb)
	network, _ = ip.Prefix(nb)
	return src, network, true
}

// begin admits a handshake from addr: it takes a token from the source's
// bucket and counts the handshake as under way, or reports false when the
// source is over a limit. Every admitted handshake must end with end.
func (l *sourceLimiter) begin(addr net.Addr, now time.Time) bool {
	return l.acquire(addr, now, true)
}

// hold counts a handshake from addr as under way without taking a token, or
// reports false when the source or its network is over its share. It ends
// with end.
func (l *sourceLimiter) hold(addr net.Addr) bool {
	return l.acquire(addr, time.Time{}, false)
}

func (l *sourceLimiter) acquire(addr net.Addr, now time.Time, token bool) bool {
	src, network, limited := source(addr)
	if !limited {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[src] >= l.maxPending || l.pending[network] >= pendingPerNetwork*l.maxPending/pendingPerSource {
		return false
	}
	if token && !l.take(src, now) {
		return false
	}
	l.pending[src]++
	l.pending[network]++
	return true
}

// end records that a handshake admitted by begin or hold is over.
func (l *sourceLimiter) end(addr net.Addr) {
	src, network, limited := source(addr)
	if !limited {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range [2]netip.Prefix{src, network} {
		if l.pending[k]--; l.pending[k] <= 0 {
			delete(l.pending, k)
		}
	}
}

// take takes a token from src's bucket. The caller holds mu.
func (l *sourceLimiter) take(src netip.Prefix, now time.Time) bool {
	b := l.buckets[src]
	if b == nil {
		if len(l.buckets) >= maxSources {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[src] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets the sources whose bucket is full again. The caller holds mu.
func (l *sourceLimiter) prune(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for src, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, src)
		}
	}
}
