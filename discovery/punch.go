package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/config"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/p2pd/p2pd/identity"
	"go.uber.org/fx"
)

// Hole punching (DCUtR) turns a relayed path into a direct one: over the
// relayed connection both peers exchange their public addresses and dial
// each other at the same moment, so that each NAT sees its own host's
// packets leave before the other's arrive. The peer that received the
// relayed connection starts it; the other answers.
//
// Discovery runs libp2p's hole-punching service itself instead of letting
// the host do it (hostConfig leaves EnableHolePunching off), for three
// reasons the namespace tests showed:
//
//   - The host starts a punch only when a relayed connection comes in, and
//     only if it knows a public address of its own by then. Its address
//     comes from the relay's identify a moment after start; a peer that
//     connects through the relay at once (every node dials its peers at
//     start) is missed, and never tried again while the relayed
//     connection lives.
//   - The host counts an observed address only after four observers agree;
//     a private overlay has one or two public peers. The service here is
//     given every public address that any direct peer observed.
//   - A failed punch (a packet lost, the peer's NAT not ready) is never
//     retried. punchLoop retries with backoff while the path stays relayed.
//
// Because the overlay shares libp2p's UDP port, the NAT mapping that a
// punched libp2p connection opened also carries the overlay's QUIC: the
// direct connection is reported as a learned address (Discovery.connected)
// and the node dials its overlay session there.
const (
	punchTick     = time.Second     // how often relayed peers are looked at
	punchRetryMin = 5 * time.Second // after the first failed punch
	punchRetryMax = 2 * time.Minute // backoff cap
	punchTimeout  = 3 * time.Second // of a direct dial and of each punch round (libp2p: 5 s)
)

// puncher is the node's hole-punching service and what it knows: its own
// observed addresses and, per relayed peer, how the punches went.
type puncher struct {
	h   host.Host
	svc *holepunch.Service
	obs *observations
	log *slog.Logger
	sub event.Subscription // identify results, for observed addresses

	mu    sync.Mutex // guards peers
	peers map[peer.ID]*punchState
}

// punchState is what the puncher knows about one peer.
type punchState struct {
	attempts int       // punches that failed since the path became relayed
	next     time.Time // when punchLoop may start the next one
	lastErr  string
	theirs   Mapping // the peer's NAT, from the addresses it sent
}

// punchPrep is what the puncher sets up in the host's config: the
// observations, which the host's addresses include (announceObserved), and
// a subscription to identify results made while the host is built, before
// it dials anyone — the relay's identify comes within milliseconds of the
// start, and it does not come again.
type punchPrep struct {
	obs *observations
	sub event.Subscription // set when the host is built
	err error
}

func preparePunch(hc *config.Config) *punchPrep {
	pp := &punchPrep{obs: newObservations()}
	hc.AddrsFactory = announceObserved(hc.AddrsFactory, pp.obs)
	hc.UserFxOptions = append(hc.UserFxOptions, fx.Invoke(func(b event.Bus) error {
		pp.sub, pp.err = b.Subscribe(new(event.EvtPeerIdentificationCompleted))
		return pp.err
	}))
	return pp
}

func newPuncher(h host.Host, pp *punchPrep, log *slog.Logger) (*puncher, error) {
	if pp.sub == nil {
		return nil, fmt.Errorf("discovery: hole punching: no identify subscription: %v", pp.err)
	}
	idh, ok := h.(interface{ IDService() identify.IDService })
	if !ok {
		pp.sub.Close()
		return nil, errors.New("discovery: hole punching: the host has no identify service")
	}
	p := &puncher{h: h, obs: pp.obs, sub: pp.sub, log: log, peers: map[peer.ID]*punchState{}}
	var err error
	p.svc, err = holepunch.NewService(h, idh.IDService(), p.publicAddrs,
		holepunch.WithTracer(p), holepunch.DirectDialTimeout(punchTimeout), holepunch.WithAddrFilter(punchFilter{}))
	if err != nil {
		pp.sub.Close()
		return nil, fmt.Errorf("discovery: hole punching: %w", err)
	}
	return p, nil
}

// punchFilter bounds the addresses a peer's CONNECT names for this node
// to dial as it punches (the peer is trusted, but up to 4 KB of addresses
// would each be dialled for the punch's 10 s); what this node sends is
// left as it is.
type punchFilter struct{}

func (punchFilter) FilterLocal(_ peer.ID, addrs []ma.Multiaddr) []ma.Multiaddr { return addrs }
func (punchFilter) FilterRemote(_ peer.ID, addrs []ma.Multiaddr) []ma.Multiaddr {
	return capAddrs(addrs, maxPeerAddrs)
}

// close stops the service, which ends a punch in progress, and the
// subscription. punchLoop and observeLoop return after it.
func (p *puncher) close() error {
	err := p.svc.Close()
	p.sub.Close()
	return err
}

// publicAddrs are the addresses a punch tells the peer to dial: the host's
// own public ones (a node on a public IP) and every observed one.
func (p *puncher) publicAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range p.h.Addrs() {
		if _, relayed := circuitRelay(a); !relayed && manet.IsPublicAddr(a) {
			out = append(out, a)
		}
	}
	for _, a := range p.obs.addrs() {
		if !ma.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// ready reports whether the service answers punches: it starts once
// publicAddrs has something, checking with a backoff of up to 5 s.
func (p *puncher) ready() bool {
	return slices.Contains(p.h.Mux().Protocols(), holepunch.Protocol)
}

// observeLoop records the observed address of every identified direct
// connection.
func (p *puncher) observeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-p.sub.Out():
			if !ok {
				return
			}
			if ev, ok := e.(event.EvtPeerIdentificationCompleted); ok && ev.Conn != nil && ev.ObservedAddr != nil {
				p.obs.add(ev.Conn.RemoteMultiaddr(), ev.ObservedAddr)
			}
		}
	}
}

// punchLoop starts a punch to each peer that this node reaches only over a
// relayed connection that the peer opened, when its backoff allows, one at
// a time.
func (p *puncher) punchLoop(ctx context.Context) {
	t := time.NewTicker(punchTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !p.ready() {
			continue
		}
		for _, id := range p.due(time.Now()) {
			if ctx.Err() != nil {
				return
			}
			p.punch(id)
		}
	}
}

// due returns the peers to punch now, forgets the ones no longer relayed
// and starts the clock of newly relayed ones.
func (p *puncher) due(now time.Time) []peer.ID {
	relayed := map[peer.ID]bool{} // value: whether this node is the one to start
	for _, id := range p.h.Network().Peers() {
		inbound, only := relayedOnly(p.h.Network().ConnsToPeer(id))
		if only {
			relayed[id] = inbound
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.peers {
		if _, ok := relayed[id]; !ok {
			delete(p.peers, id)
		}
	}
	var out []peer.ID
	for id, starts := range relayed {
		st := p.peers[id]
		if st == nil {
			st = &punchState{}
			p.peers[id] = st
		}
		if starts && !now.Before(st.next) {
			out = append(out, id)
		}
	}
	return out
}

// relayedOnly reports whether conns are all relayed (and there is one),
// and whether one of them came in.
func relayedOnly(conns []network.Conn) (inbound, only bool) {
	for _, c := range conns {
		if _, relayed := circuitRelay(c.RemoteMultiaddr()); !relayed {
			return false, false
		}
		inbound = inbound || c.Stat().Direction == network.DirInbound
	}
	return inbound, len(conns) > 0
}

// punch runs one hole punch to id, up to three rounds (libp2p's), and
// schedules the next on failure. DirectConnect first waits, without a
// context, until the service has a public address: punchLoop calls punch
// only once ready() says so.
func (p *puncher) punch(id peer.ID) {
	err := p.svc.DirectConnect(id)
	if errors.Is(err, holepunch.ErrHolePunchActive) {
		return // the service's own punch, for a connection that just came in
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.peers[id]
	if st == nil {
		return
	}
	if err == nil {
		return
	}
	st.attempts++
	if st.lastErr == "" { // the tracer's is the more precise
		st.lastErr = err.Error()
	}
	wait := punchRetryMin << min(st.attempts-1, 8)
	st.next = time.Now().Add(min(wait, punchRetryMax))
	if st.attempts == 1 {
		// Once per relayed spell; the retries log at debug.
		p.log.Info("hole punch failed; staying relayed and retrying", "peer", id.String(), "reason", p.reasonLocked(st), "err", err)
		return
	}
	p.log.Debug("hole punch failed", "peer", id.String(), "attempts", st.attempts, "err", err)
}

// Trace implements holepunch.EventTracer: it keeps the outcome of punches
// in either role and what the peer's addresses say about its NAT.
func (p *puncher) Trace(e *holepunch.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.peers[e.Remote]
	if st == nil {
		st = &punchState{}
		p.peers[e.Remote] = st
	}
	switch ev := e.Evt.(type) {
	case *holepunch.StartHolePunchEvt:
		var addrs []ma.Multiaddr
		for _, s := range ev.RemoteAddrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				addrs = append(addrs, a)
			}
		}
		if m := addrsMapping(addrs); m != MappingUnknown {
			st.theirs = m
		}
	case *holepunch.EndHolePunchEvt:
		if ev.Success {
			p.log.Info("direct path opened by hole punching", "peer", e.Remote.String(), "punch", ev.EllapsedTime.Round(time.Millisecond), "failed_before", st.attempts)
			st.lastErr = ""
		} else {
			st.lastErr = lastLine(ev.Error)
		}
	case *holepunch.ProtocolErrorEvt:
		st.lastErr = lastLine(ev.Error)
	}
}

// lastLine shortens a libp2p dial error, which lists every address tried
// ("all dials failed\n  * [/ip4/…] timeout: no recent network activity"),
// to its last cause.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	s = strings.TrimPrefix(s, "* ")
	if strings.HasPrefix(s, "[") {
		if _, after, ok := strings.Cut(s, "] "); ok {
			s = after
		}
	}
	return s
}

// DirectReason says why the host reaches id only through a relay, for
// status output: that hole punching has not started yet, or how it failed
// and what the NATs' mappings suggest. It is empty when the path is not
// relayed or nothing is known yet.
func (d *Discovery) DirectReason(id identity.PeerID) string {
	pid, err := toPeer(id)
	if err != nil || d.punch == nil {
		return ""
	}
	return d.punch.reason(pid)
}

func (p *puncher) reason(id peer.ID) string {
	if _, only := relayedOnly(p.h.Network().ConnsToPeer(id)); !only {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reasonLocked(p.peers[id])
}

// reasonLocked composes the reason for a relayed peer with state st (may
// be nil). Called with p.mu held.
func (p *puncher) reasonLocked(st *punchState) string {
	ours := p.obs.mapping()
	var theirs Mapping
	var attempts int
	var lastErr string
	if st != nil {
		theirs, attempts, lastErr = st.theirs, st.attempts, st.lastErr
	}
	switch {
	case ours == MappingDependent && theirs == MappingDependent:
		return "symmetric NAT on both sides: staying relayed"
	case !p.ready():
		return "hole punching waits for this node's public address (no direct peer has reported it yet)"
	case lastErr == "" && attempts == 0:
		return "hole punching pending"
	}
	var why string
	switch {
	case ours == MappingDependent:
		why = "; this node is behind a symmetric NAT (each destination gets its own port)"
	case theirs == MappingDependent:
		why = "; the peer is behind a symmetric NAT (each destination gets its own port)"
	}
	times := ""
	switch {
	case attempts == 1:
		times = " once"
	case attempts > 1:
		times = fmt.Sprintf(" %d times", attempts)
	}
	return fmt.Sprintf("hole punching failed%s (%s)%s: staying relayed", times, lastErr, why)
}
