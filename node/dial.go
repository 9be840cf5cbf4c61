package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// maxDialAddrs bounds the addresses one dial tries.
const maxDialAddrs = 16

// dial tries every known address of p at once (at most maxDialAddrs) and, with discovery, looks
// the peer up at the same time and dials what the lookup adds (a peer that
// moved is found while its old addresses time out). The first completed
// handshake wins; the others are cancelled or closed.
func (n *Node) dial(ctx context.Context, p *peer) (*transport.Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		s   *transport.Session
		err error
	}
	results := make(chan result)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards tried
	tried := map[string]bool{}
	start := func(addr string) {
		mu.Lock()
		defer mu.Unlock()
		if tried[addr] || ctx.Err() != nil {
			return
		}
		if len(tried) >= maxDialAddrs {
			// Addresses come from discovery too, where anyone on the LAN
			// may answer for a peer: one dial costs a bounded number of
			// connections, each bounded before authentication.
			n.log.Debug("dial: address not tried, the dial has enough", "peer", p.nameNow(), "remote", addr, "limit", maxDialAddrs)
			return
		}
		tried[addr] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := n.dialAddr(ctx, p, addr)
			results <- result{s, err}
		}()
	}
	for _, a := range p.dialAddrs() {
		start(a)
	}
	if n.discovery() != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, a := range n.findPeer(ctx, p) {
				start(a)
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	var won *transport.Session
	var errs []error
	for r := range results {
		switch {
		case r.err != nil:
			errs = append(errs, r.err)
		case won == nil:
			won = r.s
			cancel()
		default:
			r.s.Close(transport.CodeDuplicate)
		}
	}
	if won != nil {
		return won, nil
	}
	if len(tried) == 0 {
		return nil, fmt.Errorf("node: peer %q has no known address (add addresses to its [[peers]] entry, or enable discovery)", p.name)
	}
	return nil, errors.Join(errs...)
}

// Carrier choice per peer (Peer.Transport).
const (
	TransportAuto = "auto"
	TransportQUIC = "quic"
	TransportTCP  = "tcp"
	// HappyEyeballsDelay is how long an "auto" dial gives QUIC alone
	// before it tries TCP beside it.
	HappyEyeballsDelay = 300 * time.Millisecond
)

// dialAddr dials p at addr over the peer's carriers: QUIC, TCP, or in auto
// mode QUIC first and TCP too once QUIC has failed or not completed within
// HappyEyeballsDelay; the first session up wins and the other is closed.
func (n *Node) dialAddr(ctx context.Context, p *peer, addr string) (*transport.Session, error) {
	p.mu.Lock()
	mode := p.transport
	p.mu.Unlock()
	switch mode {
	case TransportQUIC:
		return n.ep.Dial(ctx, p.id, addr)
	case TransportTCP:
		return n.ep.DialTCP(ctx, p.id, addr)
	}
	type result struct {
		s   *transport.Session
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, 2)
	dial := func(f func(context.Context, identity.PeerID, string) (*transport.Session, error)) {
		s, err := f(ctx, p.id, addr)
		results <- result{s, err}
	}
	var wg sync.WaitGroup
	wg.Go(func() { dial(n.ep.Dial) })
	started, pending := false, 1
	startTCP := func() {
		if !started {
			started, pending = true, pending+1
			wg.Go(func() { dial(n.ep.DialTCP) })
		}
	}
	timer := time.NewTimer(HappyEyeballsDelay)
	defer timer.Stop()
	var won *transport.Session
	var errs []error
	reason := fmt.Sprintf("QUIC did not complete within %v", HappyEyeballsDelay)
	for pending > 0 {
		select {
		case <-timer.C:
			startTCP()
			continue
		case r := <-results:
			pending--
			switch {
			case r.err != nil:
				errs = append(errs, r.err)
				if won == nil && !started {
					reason = "QUIC failed: " + r.err.Error()
					startTCP() // QUIC failed early: do not wait for the timer
				}
			case won == nil:
				won = r.s
				cancel()
			default:
				r.s.Close(transport.CodeDuplicate)
			}
		}
	}
	wg.Wait()
	if won == nil {
		return nil, errors.Join(errs...)
	}
	if won.Carrier() == transport.CarrierTCP {
		p.mu.Lock()
		p.tcpReason = reason
		p.mu.Unlock()
	}
	return won, nil
}

// QUICRetry is how often a session that fell back to TCP tries QUIC again.
const QUICRetry = 10 * time.Second

// mayUpgrade reports whether s is a TCP session this node dialed in auto
// mode, which it moves to QUIC when UDP works again.
func (n *Node) mayUpgrade(p *peer, s *transport.Session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.Carrier() == transport.CarrierTCP && s.Initiator() && p.transport != TransportTCP
}

// upgrade tries QUIC to the address of the TCP session s. A QUIC session
// that comes up replaces s (see replaces): new streams go over QUIC, and
// the streams on s finish there.
func (n *Node) upgrade(p *peer, s *transport.Session) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	q, err := n.ep.Dial(ctx, p.id, s.RemoteAddr().String())
	if err != nil {
		n.log.Debug("QUIC still does not work; staying on TCP", "peer", p.nameNow(), "err", err)
		return
	}
	if n.adopt(q) == q {
		n.log.Info("session moved from TCP to QUIC", "peer", p.nameNow(), "remote", q.RemoteAddr().String())
	}
}
