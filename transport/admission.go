package transport

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// Admission: what a connection may cost before it is authenticated.
//
//	first Initial ──▶ half-open (QUIC handshake) ──▶ pending (waiting for Noise message 1) ──▶ session
//
// Half-open: quic-go keeps state for a connection from its first Initial.
// Once retryThreshold connections are half-open, every new source must
// first answer a Retry (prove that it receives at its address), so forged
// sources never hold state beyond those few, and a proven source holds at
// most its share (sourceLimiter) of the half-open ones. No goroutine of
// ours and no libp2p resource-manager slot exists for a half-open
// connection: libp2p charges its connections once their handshake is done.
//
// Pending: a connection whose QUIC handshake completed must send message 1
// within Message1Timeout. At most MaxPendingHandshakes are pending; when the
// budget is full the oldest that has not sent message 1 is closed for the
// newcomer, so silent connections cannot starve a real peer.
const (
	// retryThreshold is the number of half-open connections above which new
	// sources must prove their address with a Retry round trip first.
	retryThreshold = 16
	// pendingRetryThreshold is the same for pending handshakes.
	pendingRetryThreshold = 32
	// Message1Timeout bounds how long a connection whose QUIC handshake
	// completed may take to send Noise message 1. Silent connections do
	// not need it short: a newcomer evicts the oldest when the budget is
	// full. A real peer on a lossy path may need it long: at 30 % loss
	// each way, three lost sends of message 1 back to back wait out
	// quic-go's doubling probe timeouts for over 2 s (the earlier bound),
	// and 1 new session in 20 was refused.
	Message1Timeout = 5 * time.Second
)

// errSourceBusy refuses a proven source over its share of half-open
// connections.
var errSourceBusy = errors.New("transport: too many connection attempts from this network")

// admission holds the counts; its methods are quic.Transport's hooks.
type admission struct {
	sources    *sourceLimiter
	maxPending int

	halfOpen atomic.Int32
	// tokenless counts the Initial packets that came without an address
	// token (verifySource's calls).
	tokenless atomic.Int64

	mu      sync.Mutex   // guards pending
	pending []*pendingHS // oldest first
}

// halfOpenConn is the record of one server connection, from its first
// Initial until its QUIC handshake completes or it dies.
type halfOpenConn struct {
	a      *admission
	remote net.Addr
	held   bool // counted in sources (a proven address)
	once   sync.Once
}

type halfOpenKey struct{}

func (h *halfOpenConn) done() {
	h.once.Do(func() {
		h.a.halfOpen.Add(-1)
		if h.held {
			h.a.sources.end(h.remote)
		}
	})
}

// connContext is quic.Transport.ConnContext: it counts the new connection
// as half-open until QUICHandshakeDone or its end.
func (a *admission) connContext(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	h := &halfOpenConn{a: a, remote: ci.RemoteAddr}
	if ci.AddrVerified {
		if !a.sources.hold(ci.RemoteAddr) {
			return ctx, errSourceBusy
		}
		h.held = true
	}
	a.halfOpen.Add(1)
	ctx = context.WithValue(ctx, halfOpenKey{}, h)
	context.AfterFunc(ctx, h.done)
	return ctx, nil
}

// verifySource is quic.Transport.VerifySourceAddress.
// quic-go asks only for an Initial without a token: an address token from
// an earlier connection (NEW_TOKEN) or a Retry's proves the address.
func (a *admission) verifySource(net.Addr) bool {
	a.tokenless.Add(1)
	return a.halfOpen.Load() >= retryThreshold || a.pendingCount() >= pendingRetryThreshold
}

// QUICHandshakeDone ends conn's half-open state: a listener that shares the
// endpoint's sockets (discovery's libp2p host) calls it for every connection
// it accepts, since the endpoint sees only the overlay's.
func QUICHandshakeDone(conn *quic.Conn) {
	if h, ok := conn.Context().Value(halfOpenKey{}).(*halfOpenConn); ok {
		h.done()
	}
}

// pendingHS is one inbound connection waiting for its Noise handshake.
type pendingHS struct {
	refuse func()      // closes the connection with the generic refusal
	heard  atomic.Bool // message 1 arrived: no longer evictable
}

func (a *admission) pendingCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// admit adds a connection, which refuse closes, to the pending handshakes. When the budget is full it
// closes the oldest one that has not sent message 1; when every pending
// one has, it refuses conn (returns nil).
func (a *admission) admit(refuse func()) *pendingHS {
	p := &pendingHS{refuse: refuse}
	a.mu.Lock()
	var evict *pendingHS
	if len(a.pending) >= a.maxPending {
		for i, o := range a.pending {
			if !o.heard.Load() {
				evict = o
				a.pending = append(a.pending[:i:i], a.pending[i+1:]...)
				break
			}
		}
		if evict == nil {
			a.mu.Unlock()
			return nil
		}
	}
	a.pending = append(a.pending, p)
	a.mu.Unlock()
	if evict != nil {
		evict.refuse()
	}
	return p
}

// release removes p from the pending handshakes, if it is still there.
func (a *admission) release(p *pendingHS) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, o := range a.pending {
		if o == p {
			a.pending = append(a.pending[:i:i], a.pending[i+1:]...)
			return
		}
	}
}
