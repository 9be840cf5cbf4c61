package node

import (
	"context"
	"errors"
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

// DialServiceAnswered opens a stream to service on peer like DialService,
// but returns only once the service has answered: a refusal is the returned
// error (a *transport.StatusError). The SOCKS5 and HTTP CONNECT proxies use
// it, since their client waits for the proxy's reply before it sends
// anything: an early stream's OK would then wait for payload that never
// comes (the accepting side holds it back, see transport.Stream.Respond).
func (n *Node) DialServiceAnswered(ctx context.Context, peerName, svc string) (proxy.Conn, error) {
	return n.dialService(ctx, peerName, svc, transport.KindTCP, func(ctx context.Context, s *transport.Session, req transport.Request) (*transport.Stream, error) {
		n.watchAnswer(s) // a crashed peer's session fails the wait at once (unreachable.go)
		return s.OpenStream(ctx, req, n.cfg.HeaderTimeout)
	})
}

// openDialed opens req to p, which had no live session: on the session a
// dial brings (or, when p is known to be down, the one a redial brings
// within failFastWait), else through a relay. The error is the service's
// answer, or a *PeerError that says why the peer could not be reached.
func (n *Node) openDialed(ctx context.Context, p *peer, req transport.Request, open func(context.Context, *transport.Session, transport.Request) (*transport.Stream, error)) (proxy.Conn, error) {
	start := time.Now()
	s, down := n.failFast(ctx, p)
	var err error
	switch {
	case down != nil:
		err = down
		if !n.hasRelays() {
			n.log.Debug("stream refused at once: the peer is down", "peer", down.Peer, "service", req.Service, "err", down)
			return nil, down
		}
	case s == nil:
		s, err = n.session(ctx, p)
		var pe *PeerError
		if err != nil && ctx.Err() == nil && !errors.As(err, &pe) && !errors.Is(err, ErrUnknownPeer) {
			err = &PeerError{Peer: p.nameNow(), ID: p.id, Reason: ReasonUnreachable, Detail: "its dial failed: " + oneLine(err), Err: err}
		}
	}
	if s != nil {
		st, oerr := open(ctx, s, req)
		if oerr == nil {
			return st, nil
		}
		if isAnswer(oerr) {
			return nil, oerr
		}
		err = &PeerError{Peer: p.nameNow(), ID: p.id, Reason: ReasonUnreachable, Detail: "its session failed: " + oneLine(oerr), Err: oerr}
	}
	if ctx.Err() != nil {
		return nil, n.notAnswered(p, time.Since(start), ctx.Err())
	}
	if n.relayer() == nil {
		return nil, err
	}
	rs, rerr := n.openRelayed(ctx, p, req, open)
	switch {
	case rerr == nil:
		return rs, nil
	case isAnswer(rerr):
		return nil, rerr
	}
	var pe *PeerError
	if n.hasRelays() && errors.As(err, &pe) {
		e := *pe
		e.Detail += "; through the relays: " + oneLine(rerr)
		return nil, &e
	}
	// Without relays libp2p tried the direct path only: what the overlay's
	// own dial found says more.
	n.log.Debug("no libp2p path either", "peer", p.nameNow(), "err", rerr)
	return nil, err
}

// isAnswer reports whether err is the service's answer, which no other path
// to the peer would change.
func isAnswer(err error) bool {
	var se *transport.StatusError
	return errors.As(err, &se)
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

// checkAliveAsync checks a session whose stream just failed or got no
// answer, so that the next connection does not wait on a dead session: it
// probes s (probe.go; one probe per peer at a time) and closes it if the
// pong does not come within livenessTimeout.
func (n *Node) checkAliveAsync(s *transport.Session) {
	if n.ctx.Err() != nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.probe(s, livenessTimeout)
	}()
}

// livenessTimeout bounds the ping that decides whether a session whose
// stream failed is still alive.
const livenessTimeout = 2 * time.Second
