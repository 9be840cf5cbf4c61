package discovery

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/p2pd/p2pd/transport"
	"github.com/quic-go/quic-go"
)

// sharedTransport is one of the endpoint's quic.Transports as quicreuse sees
// it. quicreuse dials on it, writes hole-punching packets with it, and calls
// Listen once for all ALPNs, with a tls.Config whose GetConfigForClient picks
// the tls.Config registered for the client's ALPN ("libp2p" for the host,
// "p2pd/1" for the overlay) and routes each accepted connection to that
// ALPN's listener. The endpoint owns the transport: Close is a no-op.
type sharedTransport struct {
	tr      *quic.Transport
	overlay *quic.Config
	// refuse answers a client that offers no protocol of this port: its
	// handshake fails with TLS's no_application_protocol, as on a port of
	// the overlay alone (libp2p's lookup would send internal_error).
	refuse *tls.Config
	// verifySource is the endpoint's Retry policy composed with libp2p's
	// resource-manager hook.
	verifySource func(net.Addr) bool
}

var _ quicreuse.QUICTransport = (*sharedTransport)(nil)

func newSharedTransport(sock transport.Socket, overlay *quic.Config, refuse *tls.Config, rcmgr network.ResourceManager) *sharedTransport {
	own := sock.Transport.VerifySourceAddress
	return &sharedTransport{
		tr:      sock.Transport,
		overlay: overlay,
		refuse:  refuse,
		// A Retry round trip when the endpoint has many handshakes under
		// way or when the resource manager sees too many unverified sources.
		verifySource: func(a net.Addr) bool {
			return (own != nil && own(a)) || rcmgr.VerifySourceAddress(a)
		},
	}
}

// Listen starts the one QUIC listener of the shared socket.
//
// The endpoint's transport keeps its own ConnContext, which counts
// connections that are still in their QUIC handshake and takes no libp2p
// resource-manager slot: libp2p's QUIC listener opens the connection's scope
// itself once the handshake is done (per-IP and rate limits still hold
// there), so forged sources cannot fill the resource manager. quic-go reads
// VerifySourceAddress when the listener is created, so it is set here, just
// before: nothing else listens on this transport (the endpoint was made with
// Shared = true) and its dials do not read it. Every connection accepted,
// of either ALPN, ends its half-open state in the endpoint's count.
//
// The quic.Config applies to every inbound connection, overlay and libp2p
// alike, and quicreuse passes libp2p's (256 streams, 15 s keep-alive, 10/15 MB
// windows). The overlay needs other values, so the config is changed to the
// endpoint's where it matters:
// its stream limit (small: it is what a stranger may open before any
// authentication; libp2p connections get the same), its handshake timeout,
// its flow-control windows, and DATAGRAM frames (UDP services). The idle
// timeout and keep-alive stay libp2p's (30 s, 15 s): QUIC uses the smaller
// of the two sides' idle timeouts, so an overlay session, whose dialer asks
// for the endpoint's 3.5 s, still notices a dead peer that fast and pings
// inside it, while an idle libp2p connection costs a ping per 15 s, not
// one per 1.75 s as it would with the overlay's timeout on one side. libp2p's
// resource manager still limits libp2p's streams and memory. libp2p's
// AllowConnectionWindowIncrease (which asks the resource manager of the
// connection's ALPN), version list and qlog tracer are kept.
func (t *sharedTransport) Listen(tlsConf *tls.Config, conf *quic.Config) (quicreuse.QUICListener, error) {
	t.tr.VerifySourceAddress = t.verifySource
	tc := tlsConf.Clone()
	if pick := tlsConf.GetConfigForClient; pick != nil {
		tc.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := pick(hello)
			if err != nil {
				return t.refuse, nil
			}
			return c, nil
		}
	}
	ln, err := t.tr.Listen(tc, raiseForOverlay(conf, t.overlay))
	if err != nil {
		return nil, fmt.Errorf("discovery: listen on the shared socket %s: %w (the endpoint must be made with transport.Config.Shared = true)", t.tr.Conn.LocalAddr(), err)
	}
	return handshakeDoneListener{ln}, nil
}

// handshakeDoneListener tells the endpoint that each connection it accepts
// is no longer half-open.
type handshakeDoneListener struct{ *quic.Listener }

func (l handshakeDoneListener) Accept(ctx context.Context) (*quic.Conn, error) {
	c, err := l.Listener.Accept(ctx)
	if err == nil {
		transport.QUICHandshakeDone(c)
	}
	return c, err
}

// raiseForOverlay returns a copy of conf with the overlay's needs met.
func raiseForOverlay(conf, overlay *quic.Config) *quic.Config {
	c := conf.Clone()
	c.HandshakeIdleTimeout = overlay.HandshakeIdleTimeout
	if c.MaxIdleTimeout != 0 { // 0: quic-go's 30 s
		c.MaxIdleTimeout = max(c.MaxIdleTimeout, overlay.MaxIdleTimeout)
	}
	// Never more: before its handshake, nobody can tell an overlay
	// connection from a libp2p one, and the limit is what a stranger's
	// first STREAM frame can make this node allocate (transport's lanes).
	c.MaxIncomingStreams = overlay.MaxIncomingStreams
	c.InitialStreamReceiveWindow = max(c.InitialStreamReceiveWindow, overlay.InitialStreamReceiveWindow)
	c.MaxStreamReceiveWindow = max(c.MaxStreamReceiveWindow, overlay.MaxStreamReceiveWindow)
	c.InitialConnectionReceiveWindow = max(c.InitialConnectionReceiveWindow, overlay.InitialConnectionReceiveWindow)
	c.MaxConnectionReceiveWindow = max(c.MaxConnectionReceiveWindow, overlay.MaxConnectionReceiveWindow)
	c.EnableDatagrams = true
	c.InitialPacketSize = smallerPacket(c.InitialPacketSize, overlay.InitialPacketSize)
	return c
}

// smallerPacket is the smaller of two InitialPacketSize values, where 0
// means quic-go's default.
func smallerPacket(a, b uint16) uint16 {
	const quicDefault = 1280
	if a == 0 {
		a = quicDefault
	}
	if b == 0 {
		b = quicDefault
	}
	return min(a, b)
}

// Dial dials for libp2p with its config, its first packets no bigger than
// the overlay's (so that libp2p, too, gets through paths of MTU 1280).
func (t *sharedTransport) Dial(ctx context.Context, addr net.Addr, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
	c := conf.Clone()
	c.InitialPacketSize = smallerPacket(c.InitialPacketSize, t.overlay.InitialPacketSize)
	return t.tr.Dial(ctx, addr, tlsConf, c)
}

func (t *sharedTransport) WriteTo(b []byte, addr net.Addr) (int, error) {
	return t.tr.WriteTo(b, addr)
}

func (t *sharedTransport) ReadNonQUICPacket(ctx context.Context, b []byte) (int, net.Addr, error) {
	return t.tr.ReadNonQUICPacket(ctx, b)
}

// Close does nothing: the endpoint closes its transports.
func (t *sharedTransport) Close() error { return nil }
