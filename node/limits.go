package node

import (
	"sync/atomic"
	"time"

	"github.com/p2pd/p2pd/transport"
)

// What one trusted peer may hold on this node, whatever it sends. A peer is
// authenticated but not trusted with the node's memory: one without access
// to any service costs at most MaxHeaderWait goroutines waiting for stream
// headers (each for at most HeaderTimeout), the QUIC streams its sessions
// allow (transport.StreamsPerConn per connection, transport.MaxLanes
// connections per session) and maxRetiring superseded sessions. A peer with
// access holds at most MaxStreamsPerPeer proxied connections; past that new
// streams are answered overloaded.
const (
	// MaxHeaderWait is how many of one peer's streams may wait for their
	// request header at once. Past it the node stops taking the peer's new
	// streams until a header arrives (QUIC then holds the peer's further
	// streams back), and says so in the log.
	MaxHeaderWait = 128
	// DefaultMaxStreamsPerPeer bounds one peer's live inbound streams.
	DefaultMaxStreamsPerPeer = transport.MaxLanes * transport.StreamsPerConn
	// MaxFlowsPerPeer bounds one peer's live udp flows to this node's
	// services: each holds a UDP socket (a descriptor) and three
	// goroutines. Past it new flows are answered overloaded.
	MaxFlowsPerPeer = 1024
	// maxRetiring bounds a peer's superseded sessions still finishing their
	// streams; past it the oldest is closed at once.
	maxRetiring = 4
	// limitLogEvery spaces out the log lines of one peer's limit.
	limitLogEvery = 10 * time.Second
)

// peerLimits are one peer's counters against the bounds above.
type peerLimits struct {
	headerWait chan struct{} // a token per stream waiting for its header
	inbound    atomic.Int64  // live inbound streams past their header
	flows      atomic.Int64  // live inbound udp flows (flow.go)
	lastLog    atomic.Int64  // unix nanoseconds of the last limit log line
	// lastRefusal is the same for the lines of refused streams and flows
	// (unknown service, access denied, target down), which the peer
	// triggers at will: a budget apart, so they never hide a limit's line.
	lastRefusal atomic.Int64
}

func newPeerLimits() peerLimits {
	return peerLimits{headerWait: make(chan struct{}, MaxHeaderWait)}
}

// shouldLog reports whether a limit line may be logged now, at most one per
// limitLogEvery per peer.
func (l *peerLimits) shouldLog() bool { return logDue(&l.lastLog) }

// shouldLogRefusal reports whether a refused stream's line may be logged
// now, at most one per limitLogEvery per peer; the counters
// (p2pd_streams_total and p2pctl's) count every refusal.
func (l *peerLimits) shouldLogRefusal() bool { return logDue(&l.lastRefusal) }

// logDue takes the log budget whose last line was at *last.
func logDue(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(limitLogEvery) && last.CompareAndSwap(prev, now)
}

// awaitHeaderSlot takes a header-wait token for a stream of p on session s,
// waiting while the peer has MaxHeaderWait streams waiting; false when the
// session or the node ended first.
func (n *Node) awaitHeaderSlot(p *peer, s *transport.Session) bool {
	select {
	case p.limits.headerWait <- struct{}{}:
		return true
	default:
	}
	if p.limits.shouldLog() {
		n.log.Warn("peer has too many streams waiting for their header; taking no more from it until one arrives",
			"peer", p.nameNow(), "limit", MaxHeaderWait)
	}
	select {
	case p.limits.headerWait <- struct{}{}:
		return true
	case <-s.Done():
		return false
	case <-n.ctx.Done():
		return false
	}
}

// releaseHeaderSlot returns the token taken by awaitHeaderSlot.
func (p *peer) releaseHeaderSlot() { <-p.limits.headerWait }

// admitInbound counts a stream of p past its header, or reports false when
// the peer already has the most it may.
func (n *Node) admitInbound(p *peer) bool {
	if p.limits.inbound.Add(1) <= int64(n.cfg.MaxStreamsPerPeer) {
		return true
	}
	p.limits.inbound.Add(-1)
	if p.limits.shouldLog() {
		n.log.Warn("peer has the most streams it may have open; refusing new ones as overloaded",
			"peer", p.nameNow(), "limit", n.cfg.MaxStreamsPerPeer)
	}
	return false
}

func (p *peer) nameNow() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}
