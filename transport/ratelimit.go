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
	// maxSources bounds the table; past it, sources whose bucket has
	// refilled are forgotten (they would start full anyway).
	maxSources = 4096
)

// sourceLimiter is a token bucket per source address.
type sourceLimiter struct {
	rate, burst float64

	mu      sync.Mutex // guards buckets
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newSourceLimiter(rate, burst float64) *sourceLimiter {
	return &sourceLimiter{rate: rate, burst: burst, buckets: make(map[netip.Addr]*bucket)}
}

// allow takes a token for addr's IP and reports whether there was one.
func (l *sourceLimiter) allow(addr net.Addr, now time.Time) bool {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return true
	}
	ip := ua.AddrPort().Addr().Unmap()
	if ip.IsLoopback() {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
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
