package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/p2pd/p2pd/transport"
)

// maxDialAddrs bounds the addresses one dial tries.
const maxDialAddrs = 16

// lookupTimeout bounds a dial's lookup of the peer in discovery (a DHT
// lookup may take long); what it finds later comes as records.
const lookupTimeout = transport.DefaultHandshakeTimeout

// dial tries every known address of p at once (at most maxDialAddrs) and, with discovery, looks
// the peer up at the same time and dials what the lookup adds (a peer that
// moved is found while its old addresses time out). The first completed
// handshake wins; the others are cancelled or closed. A dial that fails
// returns a *PeerError that names every address tried and why it failed,
// and records it as why p is down.
//
// A session adopted meanwhile (the peer dialed in) ends the search: the
// lookup stops and no address is dialed from then on, so the pair does not
// pay a second handshake for a session that would only lose. Handshakes
// already under way finish, and the duplicate rule settles them (adopt).
func (n *Node) dial(ctx context.Context, p *peer) (*transport.Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	up := p.upChan() // closed when a session is adopted from now on
	type result struct {
		addr string
		s    *transport.Session
		err  error
	}
	results := make(chan result)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards tried
	var tried []string
	start := func(addr string) {
		mu.Lock()
		defer mu.Unlock()
		if slices.Contains(tried, addr) || ctx.Err() != nil {
			return
		}
		select {
		case <-up:
			n.log.Debug("dial: address not tried, a session came up meanwhile", "peer", p.nameNow(), "remote", addr)
			return
		default:
		}
		if len(tried) >= maxDialAddrs {
			// Addresses come from discovery too, where anyone on the LAN
			// may answer for a peer: one dial costs a bounded number of
			// connections, each bounded before authentication.
			n.log.Debug("dial: address not tried, the dial has enough", "peer", p.nameNow(), "remote", addr, "limit", maxDialAddrs)
			return
		}
		tried = append(tried, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := n.dialAddr(ctx, p, addr)
			results <- result{addr, s, err}
		}()
	}
	for _, a := range p.dialAddrs() {
		start(a)
	}
	var lookupErr error // written before wg.Done, read after the results end
	if n.discovery() != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
			defer cancel()
			go func() {
				select {
				case <-up:
					cancel()
				case <-lctx.Done():
				}
			}()
			addrs, err := n.findPeer(lctx, p)
			lookupErr = err
			for _, a := range addrs {
				start(a)
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	var won *transport.Session
	errs := map[string]error{}
	for r := range results {
		switch {
		case r.err != nil:
			errs[r.addr] = r.err
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
	select {
	case <-up:
		if p.current() != nil {
			return nil, errSuperseded
		}
	default:
	}
	for _, err := range errs {
		if isDuplicate(err) {
			return nil, err // the peer's own dial won: see session
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err() // the node is stopping, or the caller gave up
	}
	n.log.Debug("dial failed", "peer", p.nameNow(), "err", errors.Join(slices.Collect(maps.Values(errs))...))
	return nil, n.dialFailure(p, tried, errs, lookupErr)
}

// errSuperseded ends a dial that a session adopted meanwhile made
// pointless (the peer dialed in): not a failure.
var errSuperseded = errors.New("node: a session came up during the dial")

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
// mode both, raced as carrierRace says.
func (n *Node) dialAddr(ctx context.Context, p *peer, addr string) (*transport.Session, error) {
	p.mu.Lock()
	mode := p.transport
	p.mu.Unlock()
	quic := func(ctx context.Context) (*transport.Session, error) { return n.ep.Dial(ctx, p.id, addr) }
	tcp := func(ctx context.Context) (*transport.Session, error) { return n.ep.DialTCP(ctx, p.id, addr) }
	switch mode {
	case TransportQUIC:
		return quic(ctx)
	case TransportTCP:
		return tcp(ctx)
	}
	race := carrierRace{quic: quic, tcp: tcp, delay: HappyEyeballsDelay,
		drop: func(s *transport.Session) { s.Close(transport.CodeDuplicate) }}
	won, err := race.run(ctx, n.ctx)
	if err != nil {
		return nil, err
	}
	if won.late != nil {
		n.wg.Add(1)
		go n.lateQUIC(p, won.late, won.stop)
	}
	if won.reason != "" {
		p.mu.Lock()
		p.tcpReason = won.reason
		p.mu.Unlock()
	}
	return won.s, nil
}

// carrierRace is an "auto" dial to one address: QUIC alone for delay, then
// TCP beside it, at once if QUIC fails sooner; the first session up wins
// and one that comes up after it is dropped.
//
// QUIC runs on a context of its own (run's bg): once TCP has won, it goes
// on (up to handshakeWait, lateQUIC) and, if it completes, replaces the
// TCP session, as the peer, which may have completed both handshakes and
// kept QUIC (replaces), does on its side. Cancelling it would leave this
// side with a TCP session the peer is retiring.
type carrierRace struct {
	quic, tcp func(context.Context) (*transport.Session, error)
	delay     time.Duration
	drop      func(*transport.Session)
}

// raced is a race's winner. When TCP won, reason says why QUIC was not
// used; if QUIC's dial had not failed, it goes on, late brings its outcome
// (once), and stop ends it.
type raced struct {
	s      *transport.Session
	reason string
	late   <-chan dialResult
	stop   context.CancelFunc
}

// run races the carriers until one wins, both fail (a *carrierErrors) or
// ctx ends. Until TCP wins, ctx's end ends QUIC's dial too; after, bg's.
func (r carrierRace) run(ctx, bg context.Context) (raced, error) {
	qctx, qcancel := context.WithCancel(bg)
	stopQ := context.AfterFunc(ctx, qcancel)
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	quicC, tcpC := make(chan dialResult, 1), make(chan dialResult, 1)
	go func() {
		s, err := r.quic(qctx)
		quicC <- dialResult{s, err}
	}()
	tcpStarted, quicDone, tcpDone := false, false, false
	startTCP := func() {
		if !tcpStarted {
			tcpStarted = true
			go func() {
				s, err := r.tcp(tctx)
				tcpC <- dialResult{s, err}
			}()
		}
	}
	timer := time.NewTimer(r.delay)
	defer timer.Stop()
	var errs carrierErrors
	reason := fmt.Sprintf("QUIC did not complete within %v", r.delay)
	for {
		select {
		case <-timer.C:
			startTCP()
		case res := <-quicC:
			quicDone = true
			stopQ()
			qcancel()
			if res.err == nil {
				tcancel()
				if tcpStarted && !tcpDone {
					go func() { // TCP lost: drop it if it comes up after all
						if t := <-tcpC; t.err == nil {
							r.drop(t.s)
						}
					}()
				}
				return raced{s: res.s}, nil
			}
			errs.quic = res.err
			if !tcpStarted {
				reason = "QUIC failed: " + res.err.Error()
				startTCP() // QUIC failed early: do not wait for the timer
			}
			if tcpDone {
				return raced{}, &errs
			}
		case res := <-tcpC:
			tcpDone = true
			if res.err == nil {
				stopQ()
				if quicDone {
					return raced{s: res.s, reason: reason}, nil
				}
				return raced{s: res.s, reason: reason, late: quicC, stop: qcancel}, nil
			}
			errs.tcp = res.err
			if quicDone {
				return raced{}, &errs
			}
		}
	}
}

// dialResult is the outcome of one carrier's dial.
type dialResult struct {
	s   *transport.Session
	err error
}

// handshakeWait bounds a QUIC dial that goes on after TCP won.
const handshakeWait = transport.DefaultHandshakeTimeout

// lateQUIC waits for the QUIC dial of an auto dial that TCP won and adopts
// its session, which then replaces the TCP one (see dialAddr).
func (n *Node) lateQUIC(p *peer, quicC <-chan dialResult, cancel context.CancelFunc) {
	defer n.wg.Done()
	defer cancel()
	t := time.AfterFunc(handshakeWait, cancel)
	defer t.Stop()
	r := <-quicC
	if r.err != nil {
		return
	}
	if n.adopt(r.s) == r.s {
		n.log.Info("session moved from TCP to QUIC", "peer", p.nameNow(), "remote", r.s.RemoteAddr().String())
	}
}

// carrierErrors are the errors of an "auto" dial to one address that
// failed over both carriers.
type carrierErrors struct{ quic, tcp error }

func (e *carrierErrors) Error() string {
	return "QUIC: " + e.quic.Error() + "; TCP: " + e.tcp.Error()
}

func (e *carrierErrors) Unwrap() []error { return []error{e.quic, e.tcp} }

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
	if p.state != Connected { // a dial beside a live session (the move to QUIC) changes nothing
		p.transition(Connecting)
	}
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
	} else if errors.Is(err, errSuperseded) {
		err = nil
	} else if isDuplicate(err) {
		// The peer dialed us at the same time and its session won
		// (replaces, adopt.go): that one is being adopted here right now.
		_, err = n.awaitWinner(n.ctx, p, up, err)
	}
	p.mu.Lock()
	p.dialing = nil
	if err != nil && n.ctx.Err() == nil {
		p.lastErr = err
		p.lastDialFail = time.Now()
	}
	// Not adopted (a session would have made it connected), and no relayed
	// dial goes on: the peer rests, disconnected now if the dial failed.
	if (p.state == Connecting || p.state == Idle) && p.relaying == nil {
		p.transition(p.resting())
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
