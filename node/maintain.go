package node

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/p2pd/p2pd/transport"
)

// startMaintainer keeps a peer with known addresses connected, redialing
// with exponential backoff and jitter. Called with n.mu held.
func (n *Node) startMaintainer(p *peer) {
	if !p.hasAddrs() {
		return
	}
	p.mu.Lock()
	live := p.sess != nil && p.sess.State() == transport.StateEstablished
	if p.maintained || !p.alwaysOn && !live {
		p.mu.Unlock()
		return
	}
	p.maintained = true
	p.mu.Unlock()
	n.wg.Add(1)
	go n.maintain(p)
}

func (n *Node) maintain(p *peer) {
	defer n.wg.Done()
	var b backoff
	for {
		p.mu.Lock()
		live := p.sess != nil && p.sess.State() == transport.StateEstablished
		// An on-demand peer is looked after only while it has a session
		// (for the move back to QUIC); nothing redials it.
		stop := p.removed || !p.alwaysOn && !live
		if stop {
			p.maintained = false // the next adopt, or a reload to always_on, starts it again
		}
		p.mu.Unlock()
		if stop || n.ctx.Err() != nil {
			return
		}
		if s := p.current(); s != nil {
			var retry <-chan time.Time
			if n.mayUpgrade(p, s) || isRelayed(s) {
				retry = time.After(QUICRetry)
			}
			select {
			case <-s.Done():
				b.reset()
			case <-retry:
				if isRelayed(s) {
					n.goDirect(p)
				} else {
					n.upgrade(p, s)
				}
			case <-n.ctx.Done():
				return
			}
			continue
		}
		if _, err := n.session(n.ctx, p); err == nil {
			b.reset()
			continue
		}
		select {
		case <-time.After(b.next()):
		case <-p.wake:
		case <-n.ctx.Done():
			return
		}
	}
}

// QUICRetry is how often a session that fell back to TCP tries QUIC again,
// and a relayed one a direct path.
const QUICRetry = 10 * time.Second

// mayUpgrade reports whether s is a TCP session this node dialed in auto
// mode, which it moves to QUIC when UDP works again.
func (n *Node) mayUpgrade(p *peer, s *transport.Session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.Carrier() == transport.CarrierTCP && s.Initiator() && p.transport != TransportTCP
}

// upgrade tries QUIC to the address of the TCP session s. A QUIC session
// that comes up replaces s (see replaces): new streams go over QUIC, and
// the streams on s finish there.
func (n *Node) upgrade(p *peer, s *transport.Session) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	q, err := n.ep.Dial(ctx, p.id, s.RemoteAddr().String())
	if err != nil {
		n.log.Debug("QUIC still does not work; staying on TCP", "peer", p.nameNow(), "err", err)
		return
	}
	if n.adopt(q) == q {
		n.log.Info("session moved from TCP to QUIC", "peer", p.nameNow(), "remote", q.RemoteAddr().String())
	}
}

// goDirect dials p's addresses beside its relayed session and waits for
// the dial: a direct session that comes up replaces the relayed one
// (replaces), whose streams finish on it.
func (n *Node) goDirect(p *peer) {
	done, err := n.startDial(p)
	if err != nil {
		return
	}
	select {
	case <-done:
	case <-n.ctx.Done():
	}
	if s := p.current(); s != nil && !isRelayed(s) {
		n.log.Info("session moved from the relay to a direct path", "peer", p.nameNow(), "session", sessionName(s))
	}
}

// backoff is the maintainer's wait between failed dials: the step doubles
// from minBackoff to maxBackoff, and each wait is drawn from the upper half
// of its step, so that peers that lost each other at the same moment do
// not redial in lockstep.
type backoff struct{ step time.Duration }

// next returns the wait before the next dial and doubles the step.
func (b *backoff) next() time.Duration {
	if b.step == 0 {
		b.step = minBackoff
	}
	wait := b.step/2 + rand.N(b.step/2+1)
	b.step = min(b.step*2, maxBackoff)
	return wait
}

// reset starts again from minBackoff, after a session came up.
func (b *backoff) reset() { b.step = 0 }
