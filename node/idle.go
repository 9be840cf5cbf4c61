package node

import (
	"cmp"
	"context"
	"time"

	"github.com/p2pd/p2pd/transport"
)

// Sessions on demand. A peer that is not AlwaysOn has no maintainer: a
// session to it is dialed when something uses the peer (DialService,
// DialFlow, Ping, and so the forwards, the proxies and the embedding API)
// and closed by reapIdle once it has carried no stream for SessionIdle.
// The close is graceful (transport's CloseIdle: an idle frame, then
// going-away and drain), so a stream that races it finishes or, if opened
// after the going-away, fails at once and its caller dials afresh; neither
// side counts the end as a failure (no fail-fast state, no error shown).
// Discovery's records refresh a peer's addresses and open no session, with
// one exception: a new address of a peer that libp2p reaches only through
// a relay (often a hole just punched) is dialed at once (AddAddresses), so
// that a direct path is ready. Idle cost per node so stays flat as the
// trust list grows.

// DefaultSessionIdle is Config.SessionIdle's default.
const DefaultSessionIdle = 5 * time.Minute

// idleDrain bounds the graceful end of an idle session.
const idleDrain = 10 * time.Second

// sessionIdle is the idle timeout in force.
func (n *Node) sessionIdle() time.Duration { return cmp.Or(n.cfg.SessionIdle, DefaultSessionIdle) }

// idleMark is what reapIdle last saw of a session: its stream count and
// since when that count has stood with no stream open.
type idleMark struct {
	opened uint64
	since  time.Time
}

// reapIdle closes sessions of on-demand peers that carried no stream for
// the idle timeout. It runs for the node's life; it owns marks.
func (n *Node) reapIdle() {
	defer n.wg.Done()
	idle := n.sessionIdle()
	t := time.NewTicker(min(max(idle/4, 100*time.Millisecond), 30*time.Second))
	defer t.Stop()
	marks := map[*transport.Session]idleMark{}
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-t.C:
			seen := make(map[*transport.Session]bool, len(marks))
			for _, p := range n.peerList() {
				s := p.current()
				p.mu.Lock()
				keep := p.alwaysOn
				p.mu.Unlock()
				if s == nil || keep {
					continue
				}
				seen[s] = true
				opened, open := s.Activity()
				m, ok := marks[s]
				if !ok || m.opened != opened || open > 0 {
					marks[s] = idleMark{opened: opened, since: now}
					continue
				}
				if now.Sub(m.since) >= idle {
					delete(marks, s)
					n.closeIdle(s)
				}
			}
			for s := range marks {
				if !seen[s] {
					delete(marks, s)
				}
			}
		}
	}
}

// closeIdle ends an idle session gracefully, in the background.
func (n *Node) closeIdle(s *transport.Session) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, idleDrain)
		defer cancel()
		s.CloseIdle(ctx)
	}()
}
