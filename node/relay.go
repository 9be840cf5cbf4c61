package node

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// Relayed sessions: when no direct path exists, discovery opens a libp2p
// stream to the peer through a circuit relay (Discovery's OpenRelayed) and
// the transport runs a session over it (the relayed carrier). That session
// is adopted like any other; its streams are the session's. A direct
// session that comes later replaces it (replaces: QUIC > TCP > relayed).

// relayer is the node's discovery, nil without one: what relayed paths go
// through.
func (n *Node) relayer() Discovery { return n.discovery() }

var errNoRelay = errors.New("node: no relay path")

// relayDialTimeout bounds a relayed dial: libp2p's dial through a relay,
// then the handshake (itself bounded by the transport's handshake timeout).
const relayDialTimeout = 2 * transport.DefaultHandshakeTimeout

// relayDial is a relayed dial under way, shared by the callers that want a
// relayed session to one peer at the same time.
type relayDial struct {
	done chan struct{} // closed when s and err are set
	s    *transport.Session
	err  error
}

// relayedSession returns a relayed session to p, dialing one unless a
// relayed dial runs already. The dial runs on the node's context, so a
// caller that gives up does not end it for the others; its session is
// adopted, and the session that serves p afterwards is returned.
func (n *Node) relayedSession(ctx context.Context, p *peer) (*transport.Session, error) {
	r := n.relayer()
	if r == nil {
		return nil, errNoRelay
	}
	p.mu.Lock()
	d := p.relaying
	if d == nil {
		if n.ctx.Err() != nil {
			p.mu.Unlock()
			return nil, errors.New("node: shutting down")
		}
		d = &relayDial{done: make(chan struct{})}
		p.relaying = d
		if p.state == Idle || p.state == Disconnected {
			p.transition(Connecting)
		}
		n.wg.Add(1)
		go n.dialRelayed(r, p, d)
	}
	p.mu.Unlock()
	select {
	case <-d.done:
		return d.s, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialRelayed opens the libp2p stream, runs the relayed handshake on it and
// adopts the session; it records the outcome in d.
func (n *Node) dialRelayed(r Discovery, p *peer, d *relayDial) {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(n.ctx, relayDialTimeout)
	defer cancel()
	d.s, d.err = n.dialRelayedSession(ctx, r, p)
	p.mu.Lock()
	p.relaying = nil
	if p.state == Connecting && p.dialing == nil { // not adopted, and no direct dial goes on
		p.transition(p.resting())
	}
	p.mu.Unlock()
	close(d.done)
}

func (n *Node) dialRelayedSession(ctx context.Context, r Discovery, p *peer) (*transport.Session, error) {
	c, err := r.OpenRelayed(ctx, p.id)
	if err != nil {
		return nil, err
	}
	s, err := n.ep.DialRelayed(ctx, c, p.id)
	if err != nil {
		return nil, err
	}
	won := n.adopt(s)
	if won == nil {
		return nil, fmt.Errorf("node: relayed session to %s not adopted", p.nameNow())
	}
	return won, nil
}

// openRelayed opens req to p on a relayed session, when no direct session
// can be had.
func (n *Node) openRelayed(ctx context.Context, p *peer, req transport.Request, open func(context.Context, *transport.Session, transport.Request) (*transport.Stream, error)) (proxy.Conn, error) {
	s, err := n.relayedSession(ctx, p)
	if err != nil {
		return nil, err
	}
	st, err := open(ctx, s, req)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// ServeRelayed runs the responder's side of a relayed session on c, a
// libp2p stream that the peer id opened (libp2p authenticated id), and
// adopts the session as the inbound sessions of the endpoint are. The
// stream is closed if id is not trusted or the handshake fails; the
// transport bounds the handshake as every inbound one.
func (n *Node) ServeRelayed(id identity.PeerID, c net.Conn) {
	n.mu.Lock()
	p := n.peers[id]
	draining := n.draining
	n.mu.Unlock()
	if p == nil || draining || n.ctx.Err() != nil {
		c.Close()
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		s, err := n.ep.AcceptRelayed(n.ctx, c, id)
		if err != nil {
			n.log.Debug("inbound relayed session failed", "peer", p.nameNow(), "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		n.adopt(s)
	}()
}

// isRelayed reports whether s runs over a libp2p stream: through a relay,
// or on a direct libp2p connection (CarrierLibp2p). Either way the node
// keeps trying its own direct path, and the session's remote address is a
// multiaddr, not an address to dial.
func isRelayed(s *transport.Session) bool {
	c := s.Carrier()
	return c == transport.CarrierRelayed || c == transport.CarrierLibp2p
}

// relayOf is the relay's peer ID of the relayed session s, or "".
func relayOf(s *transport.Session) string {
	if a, ok := s.RemoteAddr().(transport.RelayAddr); ok {
		return a.Relay
	}
	return ""
}
