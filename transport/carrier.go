package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// A session's connections are carriers: a QUIC connection (quicCarrier), or
// yamux over a Noise-encrypted TCP connection or relayed libp2p stream
// (tcpCarrier, tcpcarrier.go and relayed.go).
// Session, Stream, the control stream, going-away and drain are written
// once, over these two interfaces.

// rawStream is one stream of a carrier: a QUIC stream (quicStream) or a
// yamux stream (yamuxStream).
type rawStream interface {
	io.Reader
	io.Writer
	// Close ends the write side (a FIN).
	Close() error
	CancelRead(StreamCode)
	CancelWrite(StreamCode)
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	StreamID() quic.StreamID
}

// carrierConn is one connection of a session.
type carrierConn interface {
	// OpenStream opens a stream without waiting; errStreamLimit when the
	// peer allows no more now.
	OpenStream() (rawStream, error)
	OpenStreamSync(context.Context) (rawStream, error)
	AcceptStream(context.Context) (rawStream, error)
	// Context ends when the connection does; its cause says why.
	Context() context.Context
	CloseWithError(CloseCode, string) error
	RemoteAddr() net.Addr
	LocalAddr() net.Addr
	stats() carrierStats
	// ending reports whether the connection is on its way out, though its
	// context may not say so yet.
	ending() bool
}

// carrierStats are one connection's counters.
type carrierStats struct {
	rtt                                                          time.Duration
	bytesSent, bytesReceived, packetsSent, packetsReceived, lost uint64
	gso                                                          bool
}

// errStreamLimit reports a connection at the peer's stream limit.
var errStreamLimit = errors.New("transport: at the peer's stream limit")

// quicCarrier is a QUIC connection as a carrier.
type quicCarrier struct{ *quic.Conn }

// quicStream is a QUIC stream as a carrier's stream: p2pd's codes become
// QUIC's here, and nowhere else.
type quicStream struct{ *quic.Stream }

func (s quicStream) CancelRead(c StreamCode)  { s.Stream.CancelRead(quic.StreamErrorCode(c)) }
func (s quicStream) CancelWrite(c StreamCode) { s.Stream.CancelWrite(quic.StreamErrorCode(c)) }

func (c quicCarrier) CloseWithError(code CloseCode, msg string) error {
	return closeQUIC(c.Conn, code, msg)
}

// closeQUIC closes a QUIC connection with code, as its application error.
func closeQUIC(conn *quic.Conn, code CloseCode, msg string) error {
	return conn.CloseWithError(quic.ApplicationErrorCode(code), msg)
}

func (c quicCarrier) OpenStream() (rawStream, error) {
	st, err := c.Conn.OpenStream()
	if err != nil {
		if _, full := errors.AsType[*quic.StreamLimitReachedError](err); full {
			return nil, errStreamLimit
		}
		return nil, err
	}
	return quicStream{st}, nil
}

func (c quicCarrier) OpenStreamSync(ctx context.Context) (rawStream, error) {
	st, err := c.Conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return quicStream{st}, nil
}

func (c quicCarrier) AcceptStream(ctx context.Context) (rawStream, error) {
	st, err := c.Conn.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return quicStream{st}, nil
}

func (c quicCarrier) ending() bool { return c.Conn.Context().Err() != nil }

func (c quicCarrier) stats() carrierStats {
	cs := c.Conn.ConnectionStats()
	return carrierStats{rtt: cs.SmoothedRTT, bytesSent: cs.BytesSent, bytesReceived: cs.BytesReceived,
		packetsSent: cs.PacketsSent, packetsReceived: cs.PacketsReceived, lost: cs.PacketsLost,
		gso: c.Conn.ConnectionState().GSO}
}

// Carrier names, as Session.Carrier reports them (and p2pctl and the
// metrics' carrier label show them). Sessions prefer them in this order:
// QUIC, then TCP, then a libp2p stream, relayed or not (CarrierRank).
const (
	CarrierQUIC    = "quic"
	CarrierTCP     = "tcp"
	CarrierRelayed = "relay"
	// CarrierLibp2p is the relayed carrier on a libp2p stream whose
	// connection is direct, not a circuit: libp2p reached the peer (its
	// own hole punch, say) where the overlay's own dials did not.
	CarrierLibp2p = "libp2p"
)

// Carrier reports what carries the session: CarrierQUIC, CarrierTCP,
// CarrierRelayed or CarrierLibp2p.
func (s *Session) Carrier() string {
	if c, ok := s.conn.(*tcpCarrier); ok {
		return c.name
	}
	return CarrierQUIC
}

// CarrierRank orders carriers by preference: a session over a carrier of
// higher rank replaces one of lower rank (QUIC 2, TCP 1, relayed 0).
func CarrierRank(carrier string) int {
	switch carrier {
	case CarrierQUIC:
		return 2
	case CarrierTCP:
		return 1
	}
	return 0
}
