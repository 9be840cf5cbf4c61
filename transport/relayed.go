package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// The relayed carrier: when no direct path works, a session runs over one
// stream of a libp2p circuit-relay connection (package discovery opens and
// accepts it, protocol "/p2pd/overlay/2"). On that stream it is the TCP
// carrier byte for byte: the same Noise IK handshake (tcp.go: prologue
// "p2pd/1 noise-ik tcp", the confirmation record), then yamux over Noise
// records (tcpcarrier.go), the control stream, going-away and drain. Its
// streams carry the usual request and response headers; its udp flows have
// no QUIC datagrams, so their datagrams are frames on the flow's stream.
// The session reports CarrierRelayed, and its RemoteAddr is the circuit
// (a RelayAddr, when discovery gave one); on a libp2p connection that is
// direct (a RelayAddr with no relay) it reports CarrierLibp2p.
//
// libp2p authenticated the peer of the stream already; the responder takes
// the Noise handshake only from that same peer, so that the peer a relayed
// session is adopted for is one both layers agree on.

// errPendingFull refuses a relayed handshake when the pending-handshake
// budget holds only handshakes that are under way.
var errPendingFull = errors.New("transport: too many inbound handshakes pending")

// RelayAddr is the remote address of a relayed stream: the circuit through
// a relay.
type RelayAddr struct {
	Relay   string // the relay's peer ID
	Circuit string // the circuit's multiaddr: /…/p2p/<relay>/p2p-circuit
}

// Network is "p2p-circuit".
func (a RelayAddr) Network() string { return "p2p-circuit" }

func (a RelayAddr) String() string { return a.Circuit }

// DialRelayed runs the initiator's handshake with the peer id on c, a fresh
// relayed stream to it, and returns the session over c. On failure c is
// closed.
func (e *Endpoint) DialRelayed(ctx context.Context, c net.Conn, id identity.PeerID) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.HandshakeTimeout)
	defer cancel()
	start := time.Now()
	info, err := e.initiateTCP(ctx, c, id, nil)
	e.reportHandshake(start, err)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w with %s relayed over %s: %w", ErrHandshake, id.ShortString(), c.RemoteAddr(), err)
	}
	info.carrier = libp2pCarrier(c)
	return e.startTCPSession(ctx, info, true)
}

// AcceptRelayed runs the responder's handshake on c, a relayed stream that
// the peer want opened, and returns the session over c. The handshake must
// come from want and from a trusted key; it is bounded like every inbound
// one, by the pending-handshake budget, Message1Timeout and the handshake
// timeout. On failure c is closed.
func (e *Endpoint) AcceptRelayed(ctx context.Context, c net.Conn, want identity.PeerID) (*Session, error) {
	if e.ctx.Err() != nil {
		c.Close()
		return nil, ErrClosed
	}
	p := e.adm.admit(func() { c.Close() })
	if p == nil {
		e.reportOverloaded()
		c.Close()
		return nil, errPendingFull
	}
	stop := context.AfterFunc(e.ctx, func() { c.Close() })
	defer stop()
	return e.acceptOn(ctx, c, p, want, libp2pCarrier(c))
}

// libp2pCarrier names the carrier of a session on the libp2p stream c:
// CarrierRelayed through a circuit, CarrierLibp2p on a direct connection.
func libp2pCarrier(c net.Conn) string {
	if a, ok := c.RemoteAddr().(RelayAddr); ok && a.Relay == "" {
		return CarrierLibp2p
	}
	return CarrierRelayed
}
