package node

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/p2pd/p2pd/transport"
)

// adopt registers an established session and enforces one session per
// peer. It returns the session that serves the peer afterwards, which may
// be an older one (then s is closed as a duplicate).
func (n *Node) adopt(s *transport.Session) *transport.Session {
	n.mu.Lock()
	p := n.peers[s.Peer()]
	draining := n.draining
	n.mu.Unlock()
	if draining {
		s.Close(transport.CodeGoingAway)
		return nil
	}
	if p == nil {
		s.Close(transport.CodeRemoved)
		return nil
	}
	p.mu.Lock()
	if p.removed {
		p.mu.Unlock()
		s.Close(transport.CodeRemoved)
		return nil
	}
	old := p.sess
	if old != nil && old.State() == transport.StateEstablished && !n.replaces(s, old) {
		name := p.name
		p.mu.Unlock()
		// The loser of a simultaneous dial. Its initiator may have opened
		// streams on it already (streams open early on any live session):
		// they are served, and the session goes the graceful way, as the
		// other side's copy of it does when the winner replaces it there.
		n.log.Debug("retiring duplicate session", "peer", name, "session", sessionName(s))
		n.wg.Add(1)
		go n.serveStreams(p, s, false)
		n.retire(p, s, retireTimeout())
		return old
	}
	// Sessions with an earlier instance of the peer (it restarted) have
	// lost their other end, and their streams would hang until the idle
	// timeout. They are reset below, so that applications see the
	// connections drop and reconnect at once.
	var stale []*transport.Session
	if old != nil && old.PeerInstance() != s.PeerInstance() {
		stale = append(stale, old)
		old = nil
	}
	p.retiring = slices.DeleteFunc(p.retiring, func(r *transport.Session) bool {
		if r.PeerInstance() != s.PeerInstance() {
			stale = append(stale, r)
			return true
		}
		return false
	})
	p.sess = s
	p.transition(Connected)
	p.lastErr, p.down = nil, nil
	p.lastHandshake = time.Now()
	if p.up != nil {
		close(p.up)
		p.up = nil
	}
	remote := s.RemoteAddr().String()
	// An inbound TCP session comes from an ephemeral port, not from the
	// peer's listening one, and a relayed one from the relay: nothing to
	// learn from either.
	learned := !contains(p.addrs, remote) && (s.Carrier() == transport.CarrierQUIC || s.Initiator() && !isRelayed(s))
	if learned {
		p.learned = remote
	}
	name := p.name
	p.mu.Unlock()
	if d := n.discovery(); d != nil && learned {
		d.Learned(s.Peer(), remote)
	}
	for _, st := range stale {
		st.Close(transport.CodeDuplicate)
	}
	if old != nil {
		bound := retireTimeout()
		if old.Carrier() != s.Carrier() {
			// A move to a better carrier (relayed to direct, TCP to
			// QUIC): the old path still works, so the connections on it
			// run to their end, however long (an ssh session), as they
			// would have without the move. Only new ones take s.
			bound = 0
		}
		n.retire(p, old, bound)
	}
	n.log.Info("session established", "peer", name, "remote", s.RemoteAddr().String(), "session", sessionName(s))
	n.wg.Add(1)
	go n.serveStreams(p, s, true)
	n.mu.Lock()
	if n.running && n.ctx.Err() == nil {
		n.startMaintainer(p) // an on-demand peer's, for the life of its session
	}
	n.mu.Unlock()
	return s
}

// defaultRetireTimeout bounds how long a duplicate or replaced session may
// finish its streams (not one left behind by a move to a better carrier;
// see adopt).
const defaultRetireTimeout = 30 * time.Second

// retireBound, when set (tests), replaces defaultRetireTimeout.
var retireBound atomic.Int64

func retireTimeout() time.Duration {
	if d := retireBound.Load(); d > 0 {
		return time.Duration(d)
	}
	return defaultRetireTimeout
}

// retire ends a session that lost to a newer one. Streams already open on
// it, or on their way, finish first: both sides make the same choice, and
// the going-away exchange lets each finish its streams before the close.
// bound, if not 0, cuts the streams still open after it; with 0 they run
// until they end, the session dies (its keepalives stop) or the node stops.
// Either way maxRetiring bounds a peer's retiring sessions.
func (n *Node) retire(p *peer, s *transport.Session, bound time.Duration) {
	p.mu.Lock()
	var oldest *transport.Session
	if len(p.retiring) >= maxRetiring {
		oldest = p.retiring[0]
		p.retiring = p.retiring[1:]
	}
	p.retiring = append(p.retiring, s)
	name := p.name
	p.mu.Unlock()
	if oldest != nil {
		// A peer that churns sessions cannot pile up retiring ones.
		n.log.Info("closing a retiring session at once: the peer has too many", "peer", name, "session", sessionName(oldest), "limit", maxRetiring)
		oldest.Close(transport.CodeGoingAway)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := n.ctx, context.CancelFunc(func() {})
		if bound > 0 {
			ctx, cancel = context.WithTimeout(n.ctx, bound)
		}
		defer cancel()
		s.GoAway(ctx)
		p.mu.Lock()
		p.retiring = slices.DeleteFunc(p.retiring, func(r *transport.Session) bool { return r == s })
		p.mu.Unlock()
	}()
}

// replaces reports whether the new session s wins over the live session
// old. A different peer instance means the peer restarted
// and old is stale. A session over a better carrier wins (QUIC, then TCP,
// then relayed). Between the two sessions of a simultaneous dial, the
// one initiated by the lower peer ID survives, the same on both sides;
// between two from the same initiator, the newer one.
func (n *Node) replaces(s, old *transport.Session) bool {
	if s.PeerInstance() != old.PeerInstance() {
		return true
	}
	if s.Carrier() != old.Carrier() {
		// QUIC over TCP over relayed, the same choice on both sides: TCP
		// and the relay are fallbacks, and a session over a better
		// carrier that comes up takes over (a direct one after a hole
		// punch, or QUIC once UDP works).
		return transport.CarrierRank(s.Carrier()) > transport.CarrierRank(old.Carrier())
	}
	if s.Initiator() == old.Initiator() {
		return true
	}
	lowerIsUs := n.id.Less(s.Peer())
	return s.Initiator() == lowerIsUs
}

// ended clears the peer's session once it has ended and records why; it
// logs the end of a session that was once the peer's (logEnd).
func (n *Node) ended(p *peer, s *transport.Session, logEnd bool) {
	select {
	case <-s.Done():
	case <-n.ctx.Done():
		return
	}
	err := s.Err()
	idle := s.EndedIdle()
	p.mu.Lock()
	if p.sess == s {
		p.sess = nil
		p.lastErr = err
		if idle {
			p.lastErr = nil // nothing went wrong: the next use dials again
		}
		if !idle && !p.removed && n.ctx.Err() == nil && (p.down == nil || p.downAt.Before(s.Established())) {
			p.sessionLoss(err, n.idleTimeout()) // unless a probe said why already
		}
		if p.down != nil {
			p.lastErr = p.down // the sentence, for p2pctl peers
		}
		if p.dialing == nil {
			p.transition(p.resting())
		} else {
			p.transition(Connecting)
		}
	}
	name := p.name
	p.mu.Unlock()
	var ce *transport.CloseError
	if !logEnd || errors.As(err, &ce) && ce.Code == transport.CodeDuplicate {
		return
	}
	if idle {
		n.log.Info("session closed: idle", "peer", name, "session", sessionName(s))
		return
	}
	n.log.Info("session ended", "peer", name, "session", sessionName(s), "err", err)
}

func sessionName(s *transport.Session) string {
	dir := "in"
	if s.Initiator() {
		dir = "out"
	}
	if s.Carrier() != transport.CarrierQUIC {
		dir += ":" + s.Carrier()
	}
	return dir + ":" + s.RemoteAddr().String()
}
