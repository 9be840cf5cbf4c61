package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// Failing fast. A peer that stopped answering must not make every new
// connection wait a whole dial (the handshake timeout) before it fails. So a
// peer remembers why it is down: the last dial that failed, or the way its
// session ended. While that record is fresh and the peer has no session, a
// new stream waits at most failFastWait for a session (a dial runs in the
// background meanwhile, started if none runs) and is then refused with the
// record as its error. The record goes when a session is adopted, so the
// first connection after the peer is back is served.
const (
	// failFastWait is how long a stream to a peer known to be down waits
	// for a session before it is refused: time for a redial to a peer that
	// has just come back, well inside the one second a client should wait.
	failFastWait = 750 * time.Millisecond
	// downMemory is how long a peer's failure is trusted without a dial
	// running. The maintainer redials well within it; a peer it does not
	// keep (no address) is dialed again by the first stream after it.
	downMemory = 30 * time.Second
)

// Reasons of a PeerError.
const (
	ReasonUnreachable = "unreachable" // no address answered, or the session was lost
	ReasonNoAddress   = "no address"  // nothing to dial
)

// PeerError is why no stream to a peer could be had, as one sentence for
// people: the peer, what is wrong and the detail.
//
//	peer db (12D3KooW…Ab12Cd): unreachable: no address answered (tried 2: …)
type PeerError struct {
	Peer   string // the [[peers]] name
	ID     identity.PeerID
	Reason string // ReasonUnreachable or ReasonNoAddress
	Detail string // one line
	// Since is when the node found this out, set on a refusal that a
	// remembered failure answered without a dial.
	Since time.Time
	Err   error // the cause, for errors.Is and errors.As; may be nil
}

func (e *PeerError) Error() string {
	s := fmt.Sprintf("peer %s (%s): %s: %s", e.Peer, shortID(e.ID), e.Reason, e.Detail)
	if !e.Since.IsZero() {
		s += fmt.Sprintf(" (%s ago; retrying in the background)", time.Since(e.Since).Round(100*time.Millisecond))
	}
	return s
}

func (e *PeerError) Unwrap() error { return e.Err }

// shortID shows a peer ID as "12D3KooW…" and its last characters.
func shortID(id identity.PeerID) string {
	return "12D3KooW…" + id.ShortString()
}

// setDown records why p is down, unless a session serves it after all (the
// peer's own dial came through); called with p.mu held.
func (p *peer) setDown(reason, detail string, cause error) *PeerError {
	e := &PeerError{Peer: p.name, ID: p.id, Reason: reason, Detail: detail, Err: cause}
	if p.sess == nil || p.sess.State() != transport.StateEstablished {
		p.down, p.downAt = e, time.Now()
	}
	return e
}

// knownDown returns p's failure record while it is fresh: a dial runs, or
// the failure is younger than downMemory.
func (p *peer) knownDown() *PeerError {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down == nil || p.dialing == nil && time.Since(p.downAt) >= downMemory {
		return nil
	}
	e := *p.down
	e.Peer, e.Since = p.name, p.downAt
	return &e
}

// failFast is the session for a stream to p when p is known to be down: the
// session a redial brings within failFastWait, or else the refusal. It
// returns nil, nil when p is not known to be down.
func (n *Node) failFast(ctx context.Context, p *peer) (*transport.Session, *PeerError) {
	down := p.knownDown()
	if down == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, failFastWait)
	defer cancel()
	if s, err := n.session(ctx, p); err == nil {
		return s, nil
	}
	if now := p.knownDown(); now != nil {
		down = now // a dial that ended meanwhile knows more
	}
	return nil, down
}

// dialFailure turns what a dial to p met into the error people see and
// records it as why p is down. tried counts the addresses dialed; errs are
// their errors by address.
func (n *Node) dialFailure(p *peer, tried []string, errs map[string]error, lookupErr error) *PeerError {
	discovering := n.discovery() != nil // before p.mu: n.mu comes first
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(tried) == 0 {
		detail := "no address known (add addresses = [\"host:port\"] to its [[peers]] entry, or turn on [discovery] mdns or dht)"
		if discovering {
			detail = "no address known, and discovery found none"
			if lookupErr != nil {
				detail += " (" + oneLine(lookupErr) + ")"
			}
		}
		return p.setDown(ReasonNoAddress, detail, lookupErr)
	}
	parts := make([]string, 0, len(tried))
	var first error
	for _, a := range tried {
		if err := errs[a]; err != nil {
			parts = append(parts, a+": "+dialCause(err))
			if first == nil {
				first = err
			}
		}
	}
	detail := fmt.Sprintf("no address answered (tried %d: %s)", len(tried), strings.Join(parts, "; "))
	return p.setDown(ReasonUnreachable, detail, first)
}

// dialCause says in a few words why a dial to one address failed.
func dialCause(err error) string {
	var ne net.Error
	var ce *carrierErrors
	var closeErr *transport.CloseError
	switch {
	case errors.As(err, &ce):
		return "QUIC: " + dialCause(ce.quic) + ", TCP: " + dialCause(ce.tcp)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network is unreachable"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host is unreachable"
	case errors.As(err, &closeErr) && closeErr.Code == transport.CodeRefused:
		return "the peer refused the handshake (does its [[peers]] list this node's ID, and is this its ID?)"
	case errors.Is(err, transport.ErrHandshake):
		return "handshake failed (is this the peer's ID? " + oneLine(err) + ")"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer"
	}
	return oneLine(err)
}

// sessionLoss records why p's session s ended, when its end means the
// peer is gone; called with p.mu held.
func (p *peer) sessionLoss(err error, idle time.Duration) {
	var ce *transport.CloseError
	var ne net.Error
	detail := "its session ended: " + oneLine(err)
	switch {
	case errors.As(err, &ce) && ce.Code == transport.CodeDuplicate:
		return // replaced by another session
	case errors.As(err, &ce) && ce.Remote && ce.Code == transport.CodeGoingAway:
		detail = "it shut down"
	case errors.As(err, &ce) && ce.Remote:
		detail = "it closed the session (" + strings.TrimPrefix(ce.Error(), "transport: ") + ")"
	case errors.As(err, &ce):
		detail = "its session stopped answering and was closed"
	case errors.As(err, &ne) && ne.Timeout():
		detail = fmt.Sprintf("its session timed out (nothing heard for %v)", idle)
	}
	p.setDown(ReasonUnreachable, detail, err)
}

// oneLine is err's text on one line, without the package prefixes that
// wrapping piles up.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	for _, pre := range []string{"transport: ", "node: ", "discovery: "} {
		s = strings.ReplaceAll(s, pre, "")
	}
	return s
}

// idleTimeout is how long a session may hear nothing before it ends.
func (n *Node) idleTimeout() time.Duration {
	return cmp.Or(n.cfg.Transport.IdleTimeout, transport.DefaultIdleTimeout)
}

// notAnswered is the error of a wait for p that ended before its dial did.
func (n *Node) notAnswered(p *peer, waited time.Duration, cause error) *PeerError {
	addrs := p.dialAddrs()
	waited = waited.Round(100 * time.Millisecond)
	detail := fmt.Sprintf("no address answered within %v (tried %d: %s; still trying)", waited, len(addrs), strings.Join(addrs, ", "))
	if len(addrs) == 0 {
		detail = fmt.Sprintf("no address known, and discovery found none within %v (still looking)", waited)
	}
	return &PeerError{Peer: p.nameNow(), ID: p.id, Reason: ReasonUnreachable, Detail: detail, Err: cause}
}

// hasRelays reports whether relays are configured ([discovery] relays).
func (n *Node) hasRelays() bool {
	d := n.discovery()
	return d != nil && d.HasRelays()
}
