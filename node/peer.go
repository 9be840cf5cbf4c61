package node

import (
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
	id   identity.PeerID
	wake chan struct{} // pokes the maintainer out of its backoff; set at creation

	mu sync.Mutex // guards the fields below
	// state is where the peer is in its life (doc.go); it changes only
	// through transition, at the places that change it: startDial and
	// relayedSession, adopt, the end of a dial (runDial, dialRelayed) and
	// of a session (ended), and when a reload makes or changes the peer
	// (apply).
	state         PeerState
	stateSince    time.Time
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
	relaying      *relayDial           // non-nil while a relayed dial runs (relay.go)
	up            chan struct{}        // closed (and replaced) whenever a session is adopted
	lastErr       error
	lastDialFail  time.Time  // when the last direct dial failed
	down          *PeerError // why the peer is down (unreachable.go); nil once a session is adopted
	downAt        time.Time  // when down was found out
	probing       bool       // a probe of the session runs (probe.go)
	lastHandshake time.Time
	removed       bool
	maintained    bool

	limits peerLimits // not guarded by mu: atomics and a channel
}

// transition moves p to state to; p.mu is held.
func (p *peer) transition(to PeerState) {
	if p.state != to || p.stateSince.IsZero() {
		p.state, p.stateSince = to, time.Now()
	}
}

// resting is the state of a peer with neither a session nor a dial: idle
// for an on-demand peer with nothing wrong on record, else disconnected.
// p.mu is held.
func (p *peer) resting() PeerState {
	if !p.alwaysOn && p.lastErr == nil {
		return Idle
	}
	return Disconnected
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
