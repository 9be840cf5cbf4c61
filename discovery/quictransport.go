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
	// connContext and verifySource are libp2p's resource-manager hooks,
	// composed with the endpoint's own Retry policy.
	connContext  func(context.Context, *quic.ClientInfo) (context.Context, error)
	verifySource func(net.Addr) bool
}

var _ quicreuse.QUICTransport = (*sharedTransport)(nil)

func newSharedTransport(sock transport.Socket, overlay *quic.Config, rcmgr network.ResourceManager) *sharedTransport {
	own := sock.Transport.VerifySourceAddress
	return &sharedTransport{
		tr:      sock.Transport,
		overlay: overlay,
		// As libp2p's own QUIC setup: every inbound connection, of either
		// ALPN, gets a resource-manager connection scope before its
		// handshake, so per-IP and rate limits hold on the shared port.
		connContext: func(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
			addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quic.Version1)
			if err != nil {
				addr = nil // let the resource manager decide
			}
			scope, err := rcmgr.OpenConnection(network.DirInbound, false, addr)
			if err != nil {
				return ctx, err
			}
			ctx = network.WithConnManagementScope(ctx, scope)
			context.AfterFunc(ctx, scope.Done)
			return ctx, nil
		},
		// A Retry round trip when the endpoint has many handshakes pending
		// or when the resource manager sees too many unverified sources.
		verifySource: func(a net.Addr) bool {
			return (own != nil && own(a)) || rcmgr.VerifySourceAddress(a)
		},
	}
}

// Listen starts the one QUIC listener of the shared socket.
//
// quic-go reads Transport.ConnContext and VerifySourceAddress when the
// listener is created, so they are set here, just before: nothing else
// listens on this transport (the endpoint was made with Shared = true) and
// its dials do not read them.
//
// The quic.Config applies to every inbound connection, overlay and libp2p
// alike, and quicreuse passes libp2p's (256 streams, 15 s keep-alive, 10/15 MB
// windows). The overlay needs more, so the config is raised to the endpoint's:
// its stream limit (one stream per proxied connection), its keep-alive and
// idle timeout (how fast a dead session is noticed), its handshake timeout,
// its flow-control windows, and DATAGRAM frames (UDP services). libp2p
// connections only gain from this: libp2p's resource manager still limits
// their streams and memory. libp2p's AllowConnectionWindowIncrease (which
// asks the resource manager of the connection's ALPN), version list and
// qlog tracer are kept.
func (t *sharedTransport) Listen(tlsConf *tls.Config, conf *quic.Config) (quicreuse.QUICListener, error) {
	t.tr.ConnContext = t.connContext
	t.tr.VerifySourceAddress = t.verifySource
	ln, err := t.tr.Listen(tlsConf, raiseForOverlay(conf, t.overlay))
	if err != nil {
		return nil, fmt.Errorf("discovery: listen on the shared socket %s: %w (the endpoint must be made with transport.Config.Shared = true)", t.tr.Conn.LocalAddr(), err)
	}
	return ln, nil
}

// raiseForOverlay returns a copy of conf with the overlay's needs met.
func raiseForOverlay(conf, overlay *quic.Config) *quic.Config {
	c := conf.Clone()
	c.HandshakeIdleTimeout = overlay.HandshakeIdleTimeout
	c.MaxIdleTimeout = overlay.MaxIdleTimeout
	c.KeepAlivePeriod = overlay.KeepAlivePeriod
	c.MaxIncomingStreams = max(c.MaxIncomingStreams, overlay.MaxIncomingStreams)
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
