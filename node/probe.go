package node

import (
	"context"
	"fmt"
	"time"

	"github.com/p2pd/p2pd/transport"
)

// A session whose peer crashed looks alive until the idle timeout ends it,
// and a stream opened early on it would wait that long for its answer. So
// each early stream is watched: a live peer acknowledges the stream's first
// packet within a round trip, and a session that has heard nothing at all
// answerProbeAfter (or three round trips) after the stream was opened is
// pinged; one that does not answer within probeTimeout (or four round
// trips) is closed, which fails its streams at once.
const (
	answerProbeAfter = 250 * time.Millisecond
	probeTimeout     = 750 * time.Millisecond
)

// heard sums what s has received, which grows with every packet the peer
// sends.
func heard(s *transport.Session) uint64 {
	st := s.Stats()
	return st.PacketsReceived + st.BytesReceived
}

// watchAnswer probes s if it stays silent after a stream was opened on it.
func (n *Node) watchAnswer(s *transport.Session) {
	if n.ctx.Err() != nil {
		return
	}
	st := s.Stats()
	before, rtt := st.PacketsReceived+st.BytesReceived, st.RTT
	n.wg.Add(1)
	time.AfterFunc(max(answerProbeAfter, 3*rtt), func() {
		defer n.wg.Done()
		if heard(s) != before || s.State() != transport.StateEstablished || n.ctx.Err() != nil {
			return
		}
		n.probe(s, max(probeTimeout, 4*rtt))
	})
}

// probe pings s, at most one probe per session at a time, and closes s if
// the pong does not come within timeout.
func (n *Node) probe(s *transport.Session, timeout time.Duration) {
	n.mu.Lock()
	p := n.peers[s.Peer()]
	n.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	busy := p.probing
	p.probing = true
	p.mu.Unlock()
	if busy {
		return
	}
	defer func() {
		p.mu.Lock()
		p.probing = false
		p.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(n.ctx, timeout)
	defer cancel()
	if _, err := s.Ping(ctx); err != nil && s.State() == transport.StateEstablished && n.ctx.Err() == nil {
		p.mu.Lock()
		if p.sess == s {
			// Before the close: a stream it fails may look at once.
			p.down = &PeerError{Peer: p.name, ID: p.id, Reason: ReasonUnreachable,
				Detail: fmt.Sprintf("its session stopped answering (no pong within %v)", timeout), Err: err}
			p.downAt = time.Now()
		}
		name := p.name
		p.mu.Unlock()
		n.log.Info("closing a session that stopped answering", "peer", name, "session", sessionName(s), "waited", timeout)
		s.Close(transport.CodeNormal)
		if d := n.discovery(); d != nil {
			d.Forget(s.Peer())
		}
	}
}
