package node

import (
	"context"
	"time"

	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// DialService opens a stream to service on peer (a name or peer ID),
// dialing the peer first if it has no session, and going through a relay
// when no direct path can be had. On a live session the stream is opened
// early: payload may follow at once and a refusal comes with the first Read.
// A young session may yet lose a simultaneous dial; the loser is
// retired gracefully on both sides (adopt), so its streams finish.
func (n *Node) DialService(ctx context.Context, peerName, svc string) (proxy.Conn, error) {
	return n.dialService(ctx, peerName, svc, transport.KindTCP, n.openEarly)
}

// dialService opens a stream to svc on the peer with open: on the live
// session, else on a relayed path the node prefers now, else on a session
// it waits for (or dials), else relayed. The service's answer, a refusal,
// ends the search: no other path would change it.
func (n *Node) dialService(ctx context.Context, peerName, svc string, kind transport.Kind, open func(context.Context, *transport.Session, transport.Request) (*transport.Stream, error)) (proxy.Conn, error) {
	req := transport.Request{Kind: kind, Service: svc}
	p, err := n.lookup(peerName)
	if err != nil {
		return nil, err
	}
	if s := p.current(); s != nil {
		st, err := open(ctx, s, req)
		if err == nil {
			return st, nil
		}
		if isAnswer(err) {
			return nil, err
		}
		n.checkAliveAsync(s)
	}
	if n.preferRelay(p) {
		rs, err := n.openRelayed(ctx, p, req, open)
		if err == nil {
			return rs, nil
		}
		if isAnswer(err) {
			return nil, err
		}
	}
	// No live session: wait for the one being dialed (or dial), failing
	// fast when the peer is known to be down (unreachable.go).
	return n.openDialed(ctx, p, req, open)
}

// openEarly opens a stream with req on s without waiting for the answer;
// a stream that gets no answer makes the node check that s is alive.
func (n *Node) openEarly(ctx context.Context, s *transport.Session, req transport.Request) (*transport.Stream, error) {
	st, err := s.OpenStreamEarly(ctx, req, n.cfg.HeaderTimeout, func(error) { n.checkAliveAsync(s) })
	if err == nil {
		n.watchAnswer(s) // a crashed peer's session fails the stream at once (unreachable.go)
	}
	return st, err
}

// directRetry is how long after a failed direct dial new connections go
// straight through a live relayed path; the maintainer keeps trying direct.
const directRetry = 30 * time.Second

// preferRelay reports whether p has no session, its last direct dial failed
// recently and libp2p holds a relayed path to it.
func (n *Node) preferRelay(p *peer) bool {
	r := n.relayer()
	if r == nil || p.current() != nil {
		return false
	}
	p.mu.Lock()
	recent := !p.lastDialFail.IsZero() && time.Since(p.lastDialFail) < directRetry
	p.mu.Unlock()
	if !recent {
		return false
	}
	_, ok := r.RelayPath(p.id)
	return ok
}

// checkAliveAsync checks a session whose early stream got no answer, so
// that the next connection does not wait on a dead session.
func (n *Node) checkAliveAsync(s *transport.Session) {
	if n.ctx.Err() != nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.checkAlive(n.ctx, s)
	}()
}

// livenessTimeout bounds the ping that decides whether a session whose
// stream failed is still alive.
const livenessTimeout = 2 * time.Second

// checkAlive pings a session whose stream just failed; a session that does
// not answer is stale (the peer crashed or moved) and is closed, so that the
// next attempt dials afresh instead of waiting for the idle timeout.
func (n *Node) checkAlive(ctx context.Context, s *transport.Session) {
	ctx, cancel := context.WithTimeout(ctx, livenessTimeout)
	defer cancel()
	if _, err := s.Ping(ctx); err != nil && s.State() == transport.StateEstablished {
		n.log.Info("closing a session that stopped answering", "peer", s.Peer().ShortString(), "session", sessionName(s))
		s.Close(transport.CodeNormal)
		if d := n.discovery(); d != nil {
			d.Forget(s.Peer())
		}
	}
}
