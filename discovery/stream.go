package discovery

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// OverlayProtocol is the libp2p protocol of the stream that carries a
// relayed overlay session when no direct path exists: one stream per
// session, through a circuit relay, on which the transport runs its
// relayed carrier (the TCP carrier's Noise IK handshake and yamux; see
// package transport). Version 1 carried one overlay stream with its own
// request header per libp2p stream; the two do not mix.
const OverlayProtocol = "/p2pd/overlay/2"

// Stream is a libp2p stream to a trusted peer as a net.Conn, for the
// relayed carrier. CloseWrite half-closes; Close ends an orderly stream;
// Abort resets it. While it is open, the libp2p connection beneath is
// protected from the connection manager.
type Stream struct {
	s       network.Stream
	peer    identity.PeerID
	local   net.Addr
	remote  transport.RelayAddr
	release func() // ends the stream's hold on its connection; once
}

var _ net.Conn = (*Stream)(nil)

// Peer returns the authenticated peer at the other end.
func (st *Stream) Peer() identity.PeerID { return st.peer }

func (st *Stream) Read(p []byte) (int, error)  { return st.s.Read(p) }
func (st *Stream) Write(p []byte) (int, error) { return st.s.Write(p) }

// LocalAddr is this host's address of the connection beneath.
func (st *Stream) LocalAddr() net.Addr { return st.local }

// RemoteAddr is the path to the peer: a transport.RelayAddr that names
// the relay when the connection beneath is relayed.
func (st *Stream) RemoteAddr() net.Addr { return st.remote }

// SetDeadline sets the read and write deadlines.
func (st *Stream) SetDeadline(t time.Time) error { return st.s.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (st *Stream) SetReadDeadline(t time.Time) error { return st.s.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (st *Stream) SetWriteDeadline(t time.Time) error { return st.s.SetWriteDeadline(t) }

// CloseWrite sends EOF after the data written so far.
func (st *Stream) CloseWrite() error { return st.s.CloseWrite() }

// Close finishes writing and stops reading.
func (st *Stream) Close() error {
	st.release()
	return st.s.Close()
}

// Abort resets the stream both ways.
func (st *Stream) Abort() {
	st.release()
	st.s.Reset()
}

// maAddr is a multiaddr as a net.Addr.
type maAddr struct{ ma.Multiaddr }

func (a maAddr) Network() string { return "libp2p" }

// OpenStream opens a stream for a relayed session to id over libp2p: over a connection
// the host has, or else one it dials, directly or through each configured
// relay (a peer behind NAT holds a reservation there). Relayed connections
// that the relay limits are used too.
func (d *Discovery) OpenStream(ctx context.Context, id identity.PeerID) (*Stream, error) {
	if d.ctx.Err() != nil {
		return nil, ErrClosed
	}
	pid, err := toPeer(id)
	if err != nil {
		return nil, fmt.Errorf("discovery: open stream to %s: %w", id, err)
	}
	d.addCircuitAddrs(pid)
	ctx = network.WithAllowLimitedConn(ctx, "p2pd overlay")
	s, err := d.host.NewStream(ctx, pid, OverlayProtocol)
	if err != nil {
		return nil, fmt.Errorf("discovery: open stream to %s over libp2p: %w", id.ShortString(), err)
	}
	return d.newStream(s, id), nil
}

// newStream wraps s, and keeps the connection manager from trimming the
// connection that carries it (a relayed one, typically) while it is open:
// for a relayed session, its whole life.
func (d *Discovery) newStream(s network.Stream, id identity.PeerID) *Stream {
	c := s.Conn()
	remote := transport.RelayAddr{Circuit: c.RemoteMultiaddr().String()}
	if r, relayed := circuitRelay(c.RemoteMultiaddr()); relayed && r != "" {
		remote.Relay = r.String()
	}
	return &Stream{s: s, peer: id, local: maAddr{c.LocalMultiaddr()}, remote: remote, release: d.holds.hold(c.RemotePeer())}
}

// HasRelays reports whether relays are configured ([discovery] relays), so
// that errors speak of relays only when there are some.
func (d *Discovery) HasRelays() bool { return len(d.relays) > 0 }

// addCircuitAddrs tells the peerstore that p may be reached through every
// configured relay. libp2p announces circuit addresses only for relays with
// public addresses; the configured ones are known anyway.
func (d *Discovery) addCircuitAddrs(p peer.ID) {
	for _, r := range d.relays {
		if r.ID == p {
			continue
		}
		circuit, err := ma.NewMultiaddr("/p2p/" + r.ID.String() + "/p2p-circuit")
		if err != nil {
			continue
		}
		for _, a := range r.Addrs {
			d.host.Peerstore().AddAddr(p, a.Encapsulate(circuit), peerstore.TempAddrTTL)
		}
	}
}

// HandleStreams makes f receive the streams trusted peers open over libp2p
// for relayed sessions; streams of other peers are reset. f runs on
// libp2p's goroutine for the stream and should hand the stream off.
func (d *Discovery) HandleStreams(f func(id identity.PeerID, st *Stream)) {
	d.host.SetStreamHandler(OverlayProtocol, func(s network.Stream) {
		id, err := fromPeer(s.Conn().RemotePeer())
		if err != nil || !d.cfg.Trusted(id) || d.ctx.Err() != nil {
			s.Reset()
			return
		}
		f(id, d.newStream(s, id))
	})
}

// RelayPath reports whether the host reaches id only through a relay, and
// the relay's peer ID. A direct connection, if any, wins.
func (d *Discovery) RelayPath(id identity.PeerID) (relay string, ok bool) {
	pid, err := toPeer(id)
	if err != nil || d.host == nil {
		return "", false
	}
	for _, c := range d.host.Network().ConnsToPeer(pid) {
		r, relayed := circuitRelay(c.RemoteMultiaddr())
		if !relayed {
			return "", false
		}
		relay, ok = r.String(), true
	}
	return relay, ok
}

// circuitRelay returns the relay of a /…/p2p/<relay>/p2p-circuit address.
func circuitRelay(a ma.Multiaddr) (peer.ID, bool) {
	var relay peer.ID
	for i, c := range a {
		if c.Code() != ma.P_CIRCUIT {
			continue
		}
		if i > 0 && a[i-1].Code() == ma.P_P2P {
			if p, err := peer.IDFromBytes(a[i-1].RawValue()); err == nil {
				relay = p
			}
		}
		return relay, true
	}
	return "", false
}

// Forget drops what libp2p holds for a peer that stopped answering: its
// connections, which are likely as stale as the overlay session, and its
// peerstore addresses, so that the next FindPeer asks the DHT afresh
// instead of returning where the peer used to be.
func (d *Discovery) Forget(id identity.PeerID) {
	pid, err := toPeer(id)
	if err != nil || d.host == nil || d.ctx.Err() != nil {
		return
	}
	d.host.Network().ClosePeer(pid)
	d.host.Peerstore().ClearAddrs(pid)
}

// overlayTag protects the libp2p connections of peers with open overlay
// streams from the connection manager.
const overlayTag = "p2pd-overlay"

// streamHolds counts each peer's open overlay streams, and protects its
// connections while there are any: the connection manager trims down to
// connsLow whatever is not protected, relayed connections that carry a
// session's streams included.
type streamHolds struct {
	cm connmgr.ConnManager
	mu sync.Mutex // guards n
	n  map[peer.ID]int
}

// hold counts one more stream of p; the function it returns counts it out,
// once however often it is called.
func (h *streamHolds) hold(p peer.ID) func() {
	h.mu.Lock()
	if h.n[p]++; h.n[p] == 1 {
		h.cm.Protect(p, overlayTag)
	}
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.n[p]--; h.n[p] == 0 {
				delete(h.n, p)
				h.cm.Unprotect(p, overlayTag)
			}
		})
	}
}
