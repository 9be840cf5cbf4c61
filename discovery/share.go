package discovery

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pd/p2pd/transport"
	"github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// sharing lends the endpoint's UDP sockets, and the quic.Transport on each,
// to libp2p's quicreuse.ConnManager, so that the libp2p host and the overlay
// use one UDP port: what libp2p observes, AutoNAT tests and hole punching
// opens is the overlay's address too. See the package doc.
type sharing struct {
	sockets []transport.Socket
	overlay *quic.Config           // the endpoint's QUIC config
	refuse  *tls.Config            // the endpoint's server TLS, for clients of no known ALPN
	listen  []ma.Multiaddr         // one per socket: the unspecified address of its family, its port
	local   []*net.UDPAddr         // the address quicreuse is told each socket has (see lentConn)
	done    []<-chan struct{}      // closed when quicreuse gives a socket back
	cm      *quicreuse.ConnManager // set by newConnManager while the host is built
}

func newSharing(ep *transport.Endpoint) (*sharing, error) {
	s := &sharing{sockets: ep.Sockets(), overlay: ep.QUICConfig(), refuse: ep.ServerTLS()}
	if len(s.sockets) == 0 {
		return nil, errors.New("discovery: the endpoint has no sockets to share")
	}
	for _, sock := range s.sockets {
		la, ok := sock.Conn.LocalAddr().(*net.UDPAddr)
		if !ok {
			return nil, fmt.Errorf("discovery: socket %s is not UDP", sock.Conn.LocalAddr())
		}
		// quicreuse only borrows transports on unspecified addresses;
		// lentConn tells it that, and the addrs factory puts the real
		// address back into what the host announces.
		local := &net.UDPAddr{IP: net.IPv4zero, Port: la.Port}
		if la.IP.To4() == nil {
			local.IP = net.IPv6unspecified
		}
		a, err := quicreuse.ToQuicMultiaddr(local, quic.Version1)
		if err != nil {
			return nil, fmt.Errorf("discovery: socket %s: %w", la, err)
		}
		s.listen = append(s.listen, a)
		s.local = append(s.local, local)
		if err := checkFree(sock); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkFree fails when sock's transport already has a listener (the
// endpoint was not made with Shared = true), by listening and closing at
// once. quic-go allows one listener per transport, and another one again
// after it closed.
func checkFree(sock transport.Socket) error {
	ln, err := sock.Transport.Listen(&tls.Config{MinVersion: tls.VersionTLS13}, nil)
	if err != nil {
		return fmt.Errorf("discovery: socket %s cannot be shared: %w (make the endpoint with transport.Config.Shared = true)", sock.Conn.LocalAddr(), err)
	}
	return ln.Close()
}

// udpNetwork is "udp4" or "udp6" for an address quicreuse accepts.
func udpNetwork(a *net.UDPAddr) string {
	if a.IP.To4() != nil {
		return "udp4"
	}
	return "udp6"
}

// newConnManager is the constructor given to libp2p.QUICReuse (fx fills in
// its parameters). It lends every socket before returning, so the swarm's
// Listen, which runs later in the host's start, finds them: ListenQUIC on
// /ip4/0.0.0.0/udp/P/quic-v1 takes a lent transport of port P instead of
// binding a new socket.
func (s *sharing) newConnManager(key quic.StatelessResetKey, tok quic.TokenGeneratorKey, rcmgr network.ResourceManager, lc fx.Lifecycle) (*quicreuse.ConnManager, error) {
	cm, err := quicreuse.NewConnManager(key, tok,
		// Never open a socket of libp2p's own: a dial of a family the
		// endpoint has no socket for fails instead of leaving from a
		// random port that no NAT mapping of ours belongs to.
		quicreuse.OverrideListenUDP(func(network string, laddr *net.UDPAddr) (net.PacketConn, error) {
			return nil, fmt.Errorf("discovery: no shared %s socket for %s (add a listen address of that family)", network, laddr)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("discovery: quic connection manager: %w", err)
	}
	for i, sock := range s.sockets {
		st := newSharedTransport(sock, s.overlay, s.refuse, rcmgr)
		var conn net.PacketConn = sock.Conn
		if la := sock.Conn.LocalAddr().(*net.UDPAddr); !la.IP.IsUnspecified() {
			conn = &lentConn{PacketConn: sock.Conn, local: s.local[i]}
		}
		done, err := cm.LendTransport(udpNetwork(s.local[i]), st, conn)
		if err != nil {
			cm.Close()
			return nil, fmt.Errorf("discovery: share socket %s with libp2p: %w (one listen address per port and address family)", sock.Conn.LocalAddr(), err)
		}
		s.done = append(s.done, done)
	}
	lc.Append(fx.StopHook(cm.Close))
	s.cm = cm
	return cm, nil
}

// lentConn reports an unspecified local address for a socket bound to a
// specific IP. quicreuse uses a lent conn only for LocalAddr (its listen key
// and the listener's multiaddr); every packet goes through the lent
// quic.Transport.
type lentConn struct {
	net.PacketConn
	local *net.UDPAddr
}

func (c *lentConn) LocalAddr() net.Addr { return c.local }

// listenOverlay registers the overlay's ALPN on every shared socket and
// hands each listener to the endpoint, which owns it from then on.
func (s *sharing) listenOverlay(ep *transport.Endpoint) error {
	if s.cm == nil {
		return errors.New("discovery: libp2p did not build the shared quic connection manager")
	}
	for _, a := range s.listen {
		ln, err := s.cm.ListenQUIC(a, ep.ServerTLS(), ep.AllowWindowIncrease)
		if err != nil {
			return fmt.Errorf("discovery: overlay listener on %s: %w", a, err)
		}
		ep.Serve(ln)
	}
	return nil
}
