package node

import (
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
