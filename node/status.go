package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/p2pd/p2pd/transport"
)

// PeerStatus is a snapshot of one peer.
type PeerStatus struct {
	Name          string
	ID            string
	State         PeerState
	Addresses     []string
	Endpoint      string
	LastHandshake time.Time
	LastError     string
	Sources       []string // how the peer's addresses were found: static, mdns, dht, learned
	Path          string   // PathDirect or PathRelayed while connected
	Relay         string   // the relay's peer ID on a relayed path
	// Carrier is what carries the session ("quic", "tcp", "relay" or
	// "libp2p"), and
	// CarrierReason why it is TCP.
	Carrier, CarrierReason string
	// DirectReason says why a relayed peer has no direct path yet.
	DirectReason string
}

// SessionStatus is a snapshot of one live session.
type SessionStatus struct {
	Peer, PeerID string
	Remote       string
	Initiator    bool
	State        string
	Established  time.Time
	Carrier      string // "quic", "tcp", "relay" or "libp2p"
	Path, Relay  string // as in PeerStatus
	Stats        transport.Stats
}

// Paths of a session, as PeerStatus and SessionStatus show them.
const (
	PathDirect  = "direct"
	PathRelayed = "relayed"
)

// sessionPath is s's path and, when relayed, the relay's peer ID. A
// session on a direct libp2p connection is direct: no relay carries it.
func sessionPath(s *transport.Session) (path, relay string) {
	if s.Carrier() == transport.CarrierRelayed {
		return PathRelayed, relayOf(s)
	}
	return PathDirect, ""
}

// ServiceStatus is a snapshot of one service.
type ServiceStatus struct {
	Service
	Active int
	Total  uint64
}

// Peers returns every trusted peer, sorted by name.
func (n *Node) Peers() []PeerStatus {
	ps := n.peerList()
	out := make([]PeerStatus, 0, len(ps))
	relayer := n.relayer()
	for _, p := range ps {
		addrs := p.dialAddrs()
		p.mu.Lock()
		st := PeerStatus{Name: p.name, ID: p.id.String(), Addresses: addrs, LastHandshake: p.lastHandshake, Sources: p.sources()}
		st.State = p.state
		if st.State == Connected && p.sess != nil {
			st.Endpoint = p.sess.RemoteAddr().String()
			st.Path, st.Relay = sessionPath(p.sess)
			st.Carrier, st.CarrierReason = p.sess.Carrier(), p.carrierReason(p.sess)
		}
		p.mu.Unlock()
		if st.Path == PathRelayed && relayer != nil {
			st.DirectReason = relayer.DirectReason(p.id)
		}
		p.mu.Lock()
		if st.State != Connected && p.lastErr != nil {
			st.LastError = p.lastErr.Error()
		}
		p.mu.Unlock()
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Sessions returns the live sessions, sorted by peer name.
func (n *Node) Sessions() []SessionStatus {
	var out []SessionStatus
	for _, ps := range n.peerList() {
		s := ps.current()
		if s == nil {
			continue
		}
		ps.mu.Lock()
		name := ps.name
		ps.mu.Unlock()
		ss := SessionStatus{
			Peer: name, PeerID: ps.id.String(), Remote: s.RemoteAddr().String(), Initiator: s.Initiator(),
			State: s.State().String(), Established: s.Established(), Carrier: s.Carrier(), Stats: s.Stats(),
		}
		ss.Path, ss.Relay = sessionPath(s)
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

func (n *Node) peerList() []*peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Collect(maps.Values(n.peers))
}

// Services returns the services, sorted by name.
func (n *Node) Services() []ServiceStatus {
	n.mu.Lock()
	out := make([]ServiceStatus, 0, len(n.services))
	for _, s := range n.services {
		out = append(out, ServiceStatus{Service: s.cfg, Active: int(s.active.Load()), Total: s.total.Load()})
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pingMargin is how long before its caller's deadline Ping gives up, so
// that its answer, a sentence, reaches the caller before the caller's own
// timeout does.
const pingMargin = 500 * time.Millisecond

// Ping measures a round trip to a peer over its session's control stream,
// dialing the peer if needed. It returns the RTT and the peer's address. A
// peer known to be down is answered at once with why (a *PeerError); one
// being dialed is waited for until shortly before ctx's deadline.
func (n *Node) Ping(ctx context.Context, nameOrID string) (time.Duration, string, error) {
	p, err := n.lookup(nameOrID)
	if err != nil {
		return 0, "", err
	}
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-pingMargin))
		defer cancel()
	}
	start := time.Now()
	s, down := n.failFast(ctx, p)
	if down != nil {
		return 0, "", down
	}
	if s == nil {
		if s, err = n.session(ctx, p); err != nil {
			if ctx.Err() != nil {
				return 0, "", n.notAnswered(p, time.Since(start), err)
			}
			return 0, "", err
		}
	}
	rtt, err := s.Ping(ctx)
	if err != nil {
		detail := "its session failed: " + oneLine(err)
		if ctx.Err() != nil {
			detail = fmt.Sprintf("no pong within %v on its session (a session that hears nothing ends after %v)",
				time.Since(start).Round(100*time.Millisecond), n.idleTimeout())
		}
		err = &PeerError{Peer: p.nameNow(), ID: p.id, Reason: ReasonUnreachable, Detail: detail, Err: err}
	}
	return rtt, s.RemoteAddr().String(), err
}

// carrierReason says why s runs over TCP, or "" for QUIC. The caller holds
// p.mu.
func (p *peer) carrierReason(s *transport.Session) string {
	switch {
	case s.Carrier() != transport.CarrierTCP:
		return ""
	case p.transport == TransportTCP:
		return `transport = "tcp"`
	case !s.Initiator():
		return "the peer connected over TCP"
	case p.tcpReason != "":
		return p.tcpReason
	}
	return "QUIC did not complete first"
}
