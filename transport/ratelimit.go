package transport

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Per-source limits on inbound handshakes. A source is an IP address: the
// QUIC handshake has completed, so it is not spoofed. Past the limit a
// connection is closed with the generic refusal before any Noise work.
// Loopback sources are not limited: a local process has cheaper ways to
// load the machine, and benchmarks and tests dial from there.
const (
	handshakesPerSecond = 50 // RELIABILITY.md: at most 50 initiations/s per peer
	handshakeBurst      = 50
	// pendingPerSource is how many handshakes one source may have under
	// way at once, so that a source that completes QUIC handshakes and then
	// stays silent cannot take the endpoint's whole pending budget
	// (MaxPendingHandshakes) from everyone else.
	pendingPerSource = 8
	// maxSources bounds the table; past it, sources whose bucket has
	// refilled are forgotten (they would start full anyway).
	maxSources = 4096
)

// sourceLimiter is a token bucket and a count of handshakes under way per
// source address.
type sourceLimiter struct {
	rate, burst float64
	maxPending  int

	mu      sync.Mutex // guards buckets and pending
	buckets map[netip.Addr]*bucket
	pending map[netip.Addr]int
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newSourceLimiter(rate, burst float64, maxPending int) *sourceLimiter {
	return &sourceLimiter{rate: rate, burst: burst, maxPending: maxPending,
		buckets: make(map[netip.Addr]*bucket), pending: make(map[netip.Addr]int)}
}

// source is addr's IP, and false for addresses that are not limited.
func source(addr net.Addr) (netip.Addr, bool) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip := ua.AddrPort().Addr().Unmap()
	return ip, !ip.IsLoopback()
}

// begin admits a handshake from addr: it takes a token from the source's
// bucket and counts the handshake as under way, or reports false when the
// source is over either limit. Every admitted handshake must end with end.
func (l *sourceLimiter) begin(addr net.Addr, now time.Time) bool {
	ip, limited := source(addr)
	if !limited {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[ip] >= l.maxPending || !l.take(ip, now) {
		return false
	}
	l.pending[ip]++
	return true
}

// end records that a handshake admitted by begin is over.
func (l *sourceLimiter) end(addr net.Addr) {
	ip, limited := source(addr)
	if !limited {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[ip]--; l.pending[ip] <= 0 {
		delete(l.pending, ip)
	}
}

// take takes a token from ip's bucket. The caller holds mu.
func (l *sourceLimiter) take(ip netip.Addr, now time.Time) bool {
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) >= maxSources {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[ip] = b
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
	for ip, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, ip)
		}
	}
}
