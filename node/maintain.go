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
	backoff := minBackoff
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
				backoff = minBackoff
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
			backoff = minBackoff
			continue
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, maxBackoff)
		select {
		case <-time.After(wait):
		case <-p.wake:
		case <-n.ctx.Done():
			return
		}
	}
}
