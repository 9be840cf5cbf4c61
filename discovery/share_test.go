package discovery

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The overlay and the libp2p hosts of two nodes talk on the same UDP ports:
// an overlay session A⇄B and a libp2p connection A⇄B, both between the
// endpoints' ports, in both directions of dialing.
func TestSharedPort(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(listen, func(t *testing.T) {
			a := newNode(t, listen, nil)
			b := newNode(t, listen, nil)
			trustEachOther(a, b)

			// The libp2p host of A listens on the endpoint's port.
			var hostPorts []int
			for _, la := range a.d.host.Network().ListenAddresses() {
				if ap, ok := overlayAddr(la); ok {
					hostPorts = append(hostPorts, int(ap.Port()))
				}
			}
			if len(hostPorts) != 1 || hostPorts[0] != a.port() {
				t.Fatalf("A's libp2p host listens on ports %v, want [%d] (the endpoint's)", hostPorts, a.port())
			}

			// Overlay: B dials A's endpoint port; the session completes
			// and leaves from B's endpoint port.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			target := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(a.port())).String()
			sess, err := b.ep.Dial(ctx, a.id, target)
			if err != nil {
				t.Fatalf("overlay dial: %v", err)
			}
			defer sess.Close(0)
			in, err := a.ep.Accept(ctx)
			if err != nil {
				t.Fatalf("overlay accept: %v", err)
			}
			defer in.Close(0)
			if in.Peer() != b.id || sess.Peer() != a.id {
				t.Fatalf("overlay peers: A sees %s, B sees %s", in.Peer(), sess.Peer())
			}
			if got := in.RemoteAddr().(*net.UDPAddr).Port; got != b.port() {
				t.Fatalf("overlay session arrives from port %d, want B's endpoint port %d", got, b.port())
			}
			if _, err := sess.Ping(ctx); err != nil {
				t.Fatalf("overlay ping: %v", err)
			}

			// libp2p: B's host connects to A's host at A's endpoint port.
			if err := b.d.host.Connect(ctx, a.info(t)); err != nil {
				t.Fatalf("libp2p connect: %v", err)
			}
			conns := a.d.host.Network().ConnsToPeer(b.d.host.ID())
			if len(conns) == 0 {
				t.Fatal("A's host has no connection from B")
			}
			local, _ := overlayAddr(conns[0].LocalMultiaddr())
			remote, _ := overlayAddr(conns[0].RemoteMultiaddr())
			if int(local.Port()) != a.port() || int(remote.Port()) != b.port() {
				t.Fatalf("libp2p connection %s <- %s, want ports %d <- %d (the endpoints')", local, remote, a.port(), b.port())
			}
			if a.d.host.Network().Connectedness(b.d.host.ID()) != network.Connected {
				t.Fatal("A not connected to B")
			}
			// The overlay session survived the libp2p traffic on its port.
			if _, err := sess.Ping(ctx); err != nil {
				t.Fatalf("overlay ping after libp2p connect: %v", err)
			}
		})
	}
}

func TestPeerIDsAgree(t *testing.T) {
	n := newNode(t, "127.0.0.1:0", nil)
	if got, want := n.d.host.ID().String(), n.id.String(); got != want {
		t.Fatalf("libp2p host id %s, identity peer id %s", got, want)
	}
	if got, err := fromPeer(n.d.host.ID()); err != nil || got != n.id {
		t.Fatalf("fromPeer(host id) = %v, %v; want %s", got, err, n.id)
	}
	pid, err := toPeer(n.id)
	if err != nil || pid != n.d.host.ID() {
		t.Fatalf("toPeer(%s) = %s, %v; want the host id", n.id, pid, err)
	}
	// Addrs are pasteable into another node's bootstrap list.
	addrs := n.d.Addrs()
	if len(addrs) == 0 {
		t.Fatal("no host addresses")
	}
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil || ai.ID != pid {
			t.Fatalf("Addrs() entry %q: %v, id %s", s, err, ai.ID)
		}
	}
}

// A socket bound to one IP is announced with that IP only, not with the
// other interface addresses libp2p derives from 0.0.0.0.
func TestBoundSocketAnnouncedAlone(t *testing.T) {
	n := newNode(t, "127.0.0.1:0", nil)
	var withPort []string
	for _, a := range n.d.host.Addrs() {
		if ap, ok := overlayAddr(a); ok && int(ap.Port()) == n.port() {
			withPort = append(withPort, ap.String())
		}
	}
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(n.port())).String()
	if len(withPort) != 1 || withPort[0] != want {
		t.Fatalf("host announces %v for its port, want [%s]", withPort, want)
	}
}
