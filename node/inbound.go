package node

import (
	"cmp"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// service is a configured service and its counters.
type service struct {
	cfg    Service
	allow  map[string]bool // peer names; "*" = every trusted peer
	active atomic.Int64
	total  atomic.Uint64

	mu      sync.Mutex                   // guards streams
	streams map[*transport.Stream]string // live inbound streams → peer name
}

func newService(cfg Service) *service {
	s := &service{cfg: cfg, allow: make(map[string]bool), streams: make(map[*transport.Stream]string)}
	for _, a := range cfg.Allow {
		s.allow[a] = true
	}
	return s
}

// serviceKey is a service's key in Node.services: service names match
// without regard to case, as the names of a .p2p host name do.
func serviceKey(name string) string { return strings.ToLower(name) }

func (s *service) allows(peer string) bool { return s.allow["*"] || s.allow[peer] }

// serveStreams accepts the peer's streams for the session's lifetime, then
// records the session's end (one goroutine per session does both).
func (n *Node) serveStreams(p *peer, s *transport.Session, logEnd bool) {
	defer n.wg.Done()
	for {
		st, err := s.AcceptStream(n.ctx)
		if err != nil {
			n.ended(p, s, logEnd)
			return
		}
		if !n.awaitHeaderSlot(p, s) {
			st.Abort()
			continue // the session or the node ended: AcceptStream says so next
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.handleStream(p, st)
		}()
	}
}

// handleStream answers one inbound stream, which holds a header-wait token
// of p: the request header, the access check, the connection to the
// target; then it splices until both ends are done.
func (n *Node) handleStream(p *peer, st *transport.Stream) {
	req, err := st.ReadRequest(n.cfg.HeaderTimeout)
	p.releaseHeaderSlot()
	if err != nil {
		st.AbortWith(transport.StreamBadHeader)
		n.countStream("", transport.StatusBadRequest)
		return
	}
	if !n.admitInbound(p) {
		st.Respond(transport.StatusOverloaded)
		n.countStream(req.Service, transport.StatusOverloaded)
		return
	}
	defer p.limits.inbound.Add(-1)
	p.mu.Lock()
	peerName := p.name
	p.mu.Unlock()
	if req.Kind == transport.KindPing {
		n.echo(st)
		return
	}
	n.mu.Lock() // Apply rewrites a kept service's cfg and allow under n.mu
	svc := n.services[serviceKey(req.Service)]
	var cfg Service
	allowed := false
	if svc != nil {
		cfg, allowed = svc.cfg, svc.allows(peerName)
	}
	n.mu.Unlock()
	switch {
	case svc == nil:
		st.Respond(transport.StatusUnknownService)
		n.countStream(req.Service, transport.StatusUnknownService)
		if p.limits.shouldLogRefusal() {
			n.log.Info("stream refused: unknown service", "peer", peerName, "service", req.Service)
		}
		return
	case !allowed:
		st.Respond(transport.StatusAccessDenied)
		n.countStream(req.Service, transport.StatusAccessDenied)
		if p.limits.shouldLogRefusal() {
			n.log.Info("stream refused: access denied", "peer", peerName, "service", req.Service)
		}
		return
	case req.Kind == transport.KindUDP && cfg.Protocol == "udp":
		n.serveFlow(p, st, req, cfg, peerName, svc)
		return
	case req.Kind != transport.KindTCP || cfg.Protocol == "udp":
		st.Respond(transport.StatusBadRequest)
		n.countStream(req.Service, transport.StatusBadRequest)
		if p.limits.shouldLogRefusal() {
			n.log.Info("stream refused: wrong protocol", "peer", peerName, "service", req.Service, "asked", req.Kind.String(), "service_protocol", cmp.Or(cfg.Protocol, "tcp"))
		}
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.TargetTimeout)
	target, err := n.dialTarget(ctx, cfg.Target, p.id)
	cancel()
	if err != nil {
		st.Respond(targetStatus(err))
		n.countStream(req.Service, targetStatus(err))
		if p.limits.shouldLogRefusal() {
			n.log.Warn("service target failed", "peer", peerName, "service", cfg.Name, "err", err)
		}
		return
	}
	if !n.sendProxyHeader(target, st, p, peerName, cfg) { // proxyproto.go
		n.countStream(req.Service, transport.StatusTargetUnreachable)
		return
	}
	defer n.conns.add(target, p.id, peerName, cfg)() // for Whois (whois.go)
	if err := st.Respond(transport.StatusOK); err != nil {
		target.Close()
		st.Abort()
		return
	}
	n.countStream(req.Service, transport.StatusOK)
	svc.track(st, peerName)
	defer svc.untrack(st)
	// A reload during the target dial ran its revocation before track;
	// check the access again now that a later one would see this stream.
	n.mu.Lock()
	_, trusted := n.byName[peerName]
	allowed = trusted && n.services[serviceKey(req.Service)] == svc && svc.allows(peerName)
	n.mu.Unlock()
	if !allowed {
		target.Close()
		st.AbortWith(transport.StreamRevoked)
		return
	}
	stop := context.AfterFunc(n.ctx, func() { st.Abort() })
	defer stop()
	received, sent, _ := proxy.Splice(st, proxy.NetConn(target))
	n.countBytes(peerName, cfg.Name, received, sent)
}

func (s *service) track(st *transport.Stream, peer string) {
	s.active.Add(1)
	s.total.Add(1)
	s.mu.Lock()
	s.streams[st] = peer
	s.mu.Unlock()
}

func (s *service) untrack(st *transport.Stream) {
	s.active.Add(-1)
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
}

// revoke resets the live streams of peers that may no longer use s. still
// is called without s.mu (it may take Node.mu). A stream tracked after the
// copy checks its access again itself (handleStream).
func (s *service) revoke(still func(peer string) bool) {
	s.mu.Lock()
	live := maps.Clone(s.streams)
	s.mu.Unlock()
	for st, peer := range live {
		if !still(peer) {
			st.AbortWith(transport.StreamRevoked)
		}
	}
}

func (n *Node) echo(st *transport.Stream) {
	if err := st.Respond(transport.StatusOK); err != nil {
		st.Abort()
		return
	}
	if _, err := io.Copy(st, st); err != nil {
		st.Abort()
		return
	}
	st.Close()
}

// ErrNoInProc reports an "inproc:" target on a node without DialInProc.
var ErrNoInProc = errors.New("node: no in-process services on this node")

// dialTarget connects a stream of peer to a tcp service's target.
func (n *Node) dialTarget(ctx context.Context, target string, peer identity.PeerID) (net.Conn, error) {
	if c, ok, err := n.dialInProc(ctx, target, peer); ok {
		return c, err
	}
	var d net.Dialer
	if path, ok := strings.CutPrefix(target, "unix:"); ok {
		return d.DialContext(ctx, "unix", path)
	}
	d.KeepAlive = proxy.KeepAliveFor(target)
	return d.DialContext(ctx, "tcp", target)
}

// dialInProc connects to an "inproc:NAME" target; ok is false for any
// other target.
func (n *Node) dialInProc(ctx context.Context, target string, peer identity.PeerID) (c net.Conn, ok bool, err error) {
	name, ok := strings.CutPrefix(target, "inproc:")
	if !ok {
		return nil, false, nil
	}
	if n.cfg.DialInProc == nil {
		return nil, true, ErrNoInProc
	}
	c, err = n.cfg.DialInProc(ctx, name, peer)
	return c, true, err
}

func targetStatus(err error) transport.Status {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return transport.StatusTargetRefused
	}
	return transport.StatusTargetUnreachable
}
