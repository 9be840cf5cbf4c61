package node

import (
	"cmp"
	"context"
	"errors"
	"net"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// UDP flows. A flow is opened by a stream of kind udp (DialFlow on the
// client's node); the service's node connects a UDP socket to the target
// for it (serveFlow) and relays datagrams both ways until the flow idles out
// or either side closes it. The wire format is in transport's flow.go.

// DefaultFlowIdle is how long a flow lives without a datagram either way
// when its service or forward sets no idle timeout.
const DefaultFlowIdle = 60 * time.Second

// maxUDPDatagram is the largest UDP payload a flow's socket reads.
const maxUDPDatagram = 65535

// datagramBufs are the read buffers of flows' target sockets, taken only
// for the read itself: a flow that waits for its target holds none (a
// peer's 1,024 flows would hold 64 MiB otherwise).
var datagramBufs = sync.Pool{New: func() any { b := make([]byte, maxUDPDatagram); return &b }}

// newDatagramReader returns a function that waits for c's next datagram and
// returns a copy of it. On a UDP socket it waits on the poller with no
// buffer and reads into a pooled one; on anything else (an in-process
// target) it reads into a buffer of its own.
func newDatagramReader(c net.Conn) func() ([]byte, error) {
	if uc, ok := c.(*net.UDPConn); ok {
		if rc, err := uc.SyscallConn(); err == nil {
			return func() ([]byte, error) { return readDatagram(rc) }
		}
	}
	buf := make([]byte, maxUDPDatagram)
	return func() ([]byte, error) {
		n, err := c.Read(buf)
		return buf[:n], err
	}
}

// readDatagram reads one datagram from rc's connected UDP socket.
func readDatagram(rc syscall.RawConn) ([]byte, error) {
	var d []byte
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		bp := datagramBufs.Get().(*[]byte)
		defer datagramBufs.Put(bp)
		n, err := syscall.Read(int(fd), *bp)
		for err == syscall.EINTR {
			n, err = syscall.Read(int(fd), *bp)
		}
		if err == syscall.EAGAIN {
			return false // wait until the socket is readable
		}
		if err != nil {
			rerr = os.NewSyscallError("read", err)
			return true
		}
		d = append([]byte(nil), (*bp)[:n]...)
		return true
	})
	if err != nil {
		return nil, err
	}
	return d, rerr
}

// DialFlow opens a udp flow to svc on the peer (a name or peer ID) and
// returns once the service has answered; a refusal is the returned error.
// It takes the same paths as DialService: the live session, a relayed
// path, or a session it dials. On the TCP and relayed carriers every
// datagram rides the flow's stream.
func (n *Node) DialFlow(ctx context.Context, peerName, svc string) (proxy.Flow, error) {
	c, err := n.dialService(ctx, peerName, svc, transport.KindUDP, func(ctx context.Context, s *transport.Session, req transport.Request) (*transport.Stream, error) {
		f, err := s.OpenFlow(ctx, req.Service, n.cfg.HeaderTimeout)
		if err != nil {
			return nil, err
		}
		return f.Stream(), nil
	})
	if err != nil {
		return nil, err
	}
	return c.(*transport.Stream).Flow(), nil
}

// inboundFlow is a flow a peer opened to a udp service, as p2pctl flows
// lists it.
type inboundFlow struct {
	peer, service, target string
	since                 time.Time
	f                     *transport.Flow
}

// FlowInfo describes a live inbound udp flow.
type FlowInfo struct {
	Peer, Service, Target string
	Since                 time.Time
	Stats                 transport.FlowStats
}

// flowSet is the node's live inbound flows, and the counters of the ended
// ones by peer and service.
type flowSet struct {
	mu    sync.Mutex
	m     map[*inboundFlow]struct{}
	ended map[byteKey]*DatagramCount
}

func (s *flowSet) add(f *inboundFlow) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[*inboundFlow]struct{})
	}
	s.m[f] = struct{}{}
	s.mu.Unlock()
}

// remove takes an ended flow out of the live set and adds its counters to
// the ended ones, in one step, so that DatagramCounts never goes back.
func (s *flowSet) remove(f *inboundFlow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, f)
	if s.ended == nil {
		s.ended = make(map[byteKey]*DatagramCount)
	}
	k := byteKey{f.peer, f.service}
	c := s.ended[k]
	if c == nil {
		c = &DatagramCount{Peer: f.peer, Service: f.service, Dropped: map[string]uint64{}}
		s.ended[k] = c
	}
	c.add(f.f.Stats())
}

// DatagramCount is what the udp flows Peer opened to Service carried, ended
// and live: datagrams Received from the peer, Sent to it, and Dropped by
// reason (transport.DropQueueFull, transport.DropTooLarge).
type DatagramCount struct {
	Peer, Service  string
	Received, Sent uint64
	Dropped        map[string]uint64
}

func (c *DatagramCount) add(st transport.FlowStats) {
	c.Received += st.Received
	c.Sent += st.Sent
	for r, n := range st.Dropped {
		c.Dropped[r] += n
	}
}

// DatagramCounts returns the datagram counters of the udp flows peers
// opened to this node's services since it started, sorted by peer and
// service.
func (n *Node) DatagramCounts() []DatagramCount {
	s := &n.flows
	s.mu.Lock()
	sum := make(map[byteKey]*DatagramCount, len(s.ended))
	get := func(peer, service string) *DatagramCount {
		k := byteKey{peer, service}
		if sum[k] == nil {
			sum[k] = &DatagramCount{Peer: peer, Service: service, Dropped: map[string]uint64{}}
		}
		return sum[k]
	}
	for k, c := range s.ended {
		get(k.peer, k.service).add(transport.FlowStats{Received: c.Received, Sent: c.Sent, Dropped: c.Dropped})
	}
	for f := range s.m {
		get(f.peer, f.service).add(f.f.Stats())
	}
	s.mu.Unlock()
	out := make([]DatagramCount, 0, len(sum))
	for _, c := range sum {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return out[i].Peer < out[j].Peer
		}
		return out[i].Service < out[j].Service
	})
	return out
}

// Flows lists the live udp flows peers opened to this node's services.
func (n *Node) Flows() []FlowInfo {
	n.flows.mu.Lock()
	defer n.flows.mu.Unlock()
	out := make([]FlowInfo, 0, len(n.flows.m))
	for f := range n.flows.m {
		out = append(out, FlowInfo{Peer: f.peer, Service: f.service, Target: f.target, Since: f.since, Stats: f.f.Stats()})
	}
	return out
}

// dialFlowTarget connects a flow of peer to a udp service's target: a
// UDP socket connected to it, or the in-process listener.
func (n *Node) dialFlowTarget(target string, peer identity.PeerID) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.TargetTimeout)
	defer cancel()
	if c, ok, err := n.dialInProc(ctx, target, peer); ok {
		return c, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "udp", target)
}

// serveFlow answers a udp stream to the udp service cfg: a UDP socket
// connected to the target, then datagrams both ways until the flow ends.
func (n *Node) serveFlow(p *peer, st *transport.Stream, req transport.Request, cfg Service, peer string, svc *service) {
	if p.limits.flows.Add(1) > MaxFlowsPerPeer {
		p.limits.flows.Add(-1)
		st.Respond(transport.StatusOverloaded)
		if p.limits.shouldLog() {
			n.log.Warn("peer has too many udp flows; refusing new ones", "peer", peer, "service", cfg.Name, "limit", MaxFlowsPerPeer)
		}
		return
	}
	defer p.limits.flows.Add(-1)
	target, err := n.dialFlowTarget(cfg.Target, p.id)
	if err != nil {
		st.Respond(transport.StatusTargetUnreachable)
		n.countStream(req.Service, transport.StatusTargetUnreachable)
		if p.limits.shouldLogRefusal() {
			n.log.Warn("udp service target failed", "peer", peer, "service", cfg.Name, "err", err)
		}
		return
	}
	defer target.Close()
	f, err := st.AcceptFlow(req)
	if err != nil {
		st.Respond(transport.StatusBadRequest)
		n.countStream(req.Service, transport.StatusBadRequest)
		if p.limits.shouldLogRefusal() {
			n.log.Info("udp flow refused", "peer", peer, "service", cfg.Name, "err", err)
		}
		return
	}
	if err := st.Respond(transport.StatusOK); err != nil {
		f.Close()
		return
	}
	n.countStream(req.Service, transport.StatusOK)
	f.SetIdleTimeout(cmp.Or(cfg.IdleTimeout, DefaultFlowIdle))
	svc.track(st, peer) // a revocation resets the stream, which ends the flow
	defer svc.untrack(st)
	in := &inboundFlow{peer: peer, service: cfg.Name, target: cfg.Target, since: time.Now(), f: f}
	n.flows.add(in)
	defer n.flows.remove(in)
	stop := context.AfterFunc(n.ctx, func() { f.Close() })
	defer stop()

	done := make(chan struct{})
	go func() {
		defer close(done)
		read := newDatagramReader(target)
		for {
			d, err := read()
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					continue // an ICMP port unreachable for an earlier datagram
				}
				f.Close()
				return
			}
			if f.WriteDatagram(d) != nil {
				return
			}
		}
	}()
	for {
		d, err := f.NextDatagram() // no buffer held while the flow waits
		if err != nil {
			break
		}
		target.Write(d) // UDP: a failed send is a lost datagram
	}
	f.Close()
	target.Close()
	<-done
}
