package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// PeerState is what p2pctl shows for a peer.
type PeerState int

// Peer states; see the package doc for the transitions.
const (
	Disconnected PeerState = iota
	Connecting
	Connected
	// Idle is an on-demand peer (not always_on) with no session, none
	// being dialed and no failure on record: the next use dials it.
	Idle
)

func (s PeerState) String() string {
	switch s {
	case Idle:
		return "idle"
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	}
	return "disconnected"
}

// peer is one entry of the trust list and its session.
type peer struct {
	id identity.PeerID

	mu            sync.Mutex // guards the fields below
	name          string
	addrs         []string            // configured
	transport     string              // Peer.Transport
	alwaysOn      bool                // Peer.AlwaysOn: the maintainer keeps a session
	tcpReason     string              // why the last dial that won over TCP did not use QUIC
	found         map[string][]string // discovered, by source
	learned       string              // the address of the last session, if not configured
	sess          *transport.Session
	retiring      []*transport.Session // superseded sessions still finishing their streams
	dialing       chan struct{}        // non-nil while a dial runs; closed when it ends
	up            chan struct{}        // closed (and replaced) whenever a session is adopted
	lastErr       error
	lastDialFail  time.Time  // when the last direct dial failed
	down          *PeerError // why the peer is down (unreachable.go); nil once a session is adopted
	downAt        time.Time  // when down was found out
	probing       bool       // a probe of the session runs (probe.go)
	lastHandshake time.Time
	removed       bool
	wake          chan struct{} // pokes the maintainer out of its backoff
	maintained    bool

	limits peerLimits // not guarded by mu: atomics and a channel
}

func (p *peer) current() *transport.Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != nil && p.sess.State() == transport.StateEstablished {
		return p.sess
	}
	return nil
}

func (p *peer) dialAddrs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]string(nil), p.addrs...)
	for _, src := range p.sources() {
		for _, a := range p.found[src] {
			if !contains(out, a) {
				out = append(out, a)
			}
		}
	}
	if p.learned != "" && !contains(out, p.learned) {
		out = append(out, p.learned)
	}
	return out
}

func (p *peer) hasAddrs() bool {
	return len(p.dialAddrs()) > 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// session returns the peer's live session, dialing one if there is none.
// Concurrent callers share one dial. The dial runs on the node's context,
// so a caller that gives up does not end it for the others, and its result
// (a session, or why the peer is down) serves the next caller.
func (n *Node) session(ctx context.Context, p *peer) (*transport.Session, error) {
	for {
		if s := p.current(); s != nil {
			return s, nil
		}
		up := p.upChan()
		done, err := n.startDial(p)
		if err != nil {
			return nil, err
		}
		select {
		case <-up:
			// A session was adopted (ours, or the peer's): take it.
		case <-done:
			if s := p.current(); s != nil {
				return s, nil
			}
			p.mu.Lock()
			err := p.lastErr
			p.mu.Unlock()
			if err == nil {
				err = errors.New("node: dial failed")
			}
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// startDial starts a dial to p unless one runs, and returns the channel
// that the running dial closes when it ends.
func (n *Node) startDial(p *peer) (<-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return nil, fmt.Errorf("%w %q (removed)", ErrUnknownPeer, p.name)
	}
	if p.dialing != nil {
		return p.dialing, nil
	}
	if n.ctx.Err() != nil {
		return nil, errors.New("node: shutting down")
	}
	ch := make(chan struct{})
	p.dialing = ch
	n.wg.Add(1)
	go n.runDial(p, ch)
	return ch, nil
}

// runDial dials p, adopts the session and records the outcome; it closes
// ch when done.
func (n *Node) runDial(p *peer, ch chan struct{}) {
	defer n.wg.Done()
	up := p.upChan()
	s, err := n.dial(n.ctx, p)
	if err == nil {
		if n.adopt(s) == nil {
			err = errors.New("node: session lost to a parallel one that ended")
		}
	} else if isDuplicate(err) {
		// The peer dialed us at the same time and its session won
		// (DESIGN.md §3.6): that one is being adopted here right now.
		_, err = n.awaitWinner(n.ctx, p, up, err)
	}
	p.mu.Lock()
	p.dialing = nil
	if err != nil && n.ctx.Err() == nil {
		p.lastErr = err
		p.lastDialFail = time.Now()
	}
	p.mu.Unlock()
	close(ch)
}

func (p *peer) upChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.up == nil {
		p.up = make(chan struct{})
	}
	return p.up
}

func isDuplicate(err error) bool {
	var ce *transport.CloseError
	return errors.As(err, &ce) && ce.Code == transport.CodeDuplicate
}

// awaitWinner waits for the session that beat ours in a simultaneous dial.
func (n *Node) awaitWinner(ctx context.Context, p *peer, up chan struct{}, dialErr error) (*transport.Session, error) {
	t := time.NewTimer(transport.DefaultHandshakeTimeout)
	defer t.Stop()
	for {
		if s := p.current(); s != nil {
			return s, nil
		}
		select {
		case <-up:
			up = p.upChan()
		case <-t.C:
			return nil, dialErr
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

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
			if n.mayUpgrade(p, s) {
				retry = time.After(QUICRetry)
			}
			select {
			case <-s.Done():
				backoff = minBackoff
			case <-retry:
				n.upgrade(p, s)
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
		n.retire(p, s)
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
	p.lastErr, p.down = nil, nil
	p.lastHandshake = time.Now()
	if p.up != nil {
		close(p.up)
		p.up = nil
	}
	remote := s.RemoteAddr().String()
	// An inbound TCP session comes from an ephemeral port, not from the
	// peer's listening one: nothing to learn from it.
	learned := !contains(p.addrs, remote) && (s.Carrier() == transport.CarrierQUIC || s.Initiator())
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
		n.retire(p, old)
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

// retireTimeout bounds how long a superseded session may finish its streams.
const retireTimeout = 30 * time.Second

// retire ends a session that lost to a newer one. Streams already open on
// it, or on their way, finish first: both sides make the same choice, and
// the going-away exchange lets each finish its streams before the close.
func (n *Node) retire(p *peer, s *transport.Session) {
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
		ctx, cancel := context.WithTimeout(n.ctx, retireTimeout)
		defer cancel()
		s.GoAway(ctx)
		p.mu.Lock()
		p.retiring = slices.DeleteFunc(p.retiring, func(r *transport.Session) bool { return r == s })
		p.mu.Unlock()
	}()
}

// replaces reports whether the new session s wins over the live session
// old (DESIGN.md §3.6). A different peer instance means the peer restarted
// and old is stale. Between the two sessions of a simultaneous dial, the
// one initiated by the lower peer ID survives, the same on both sides;
// between two from the same initiator, the newer one.
func (n *Node) replaces(s, old *transport.Session) bool {
	if s.PeerInstance() != old.PeerInstance() {
		return true
	}
	if s.Carrier() != old.Carrier() {
		// QUIC over TCP, the same choice on both sides: TCP is the
		// fallback, and a QUIC session that comes up takes over from it.
		return s.Carrier() == transport.CarrierQUIC
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
