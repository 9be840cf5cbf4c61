package node_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// testRelayID names the relay of relayDiscovery's circuits.
const testRelayID = "12D3KooWTestRelay"

// relayDiscovery is the seam where libp2p stands: its OpenRelayed connects
// this node to the node to over loopback TCP, handing the far end to to's
// ServeRelayed, as discovery does with a stream through a circuit relay.
type relayDiscovery struct {
	fakeDiscovery
	from identity.PeerID
	to   *testNode
}

// circuit is one end of the loopback connection, seen as a relayed path.
type circuit struct{ *net.TCPConn }

func (circuit) RemoteAddr() net.Addr {
	return transport.RelayAddr{Relay: testRelayID, Circuit: "/ip4/192.0.2.1/udp/4001/quic-v1/p2p/" + testRelayID + "/p2p-circuit"}
}

func (d relayDiscovery) OpenRelayed(ctx context.Context, id identity.PeerID) (net.Conn, error) {
	if id != d.to.ID() {
		return nil, errors.New("fake: no relayed path to that peer")
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	far, err := ln.AcceptTCP()
	if err != nil {
		c.Close()
		return nil, err
	}
	d.to.ServeRelayed(d.from, circuit{far})
	return circuit{c.(*net.TCPConn)}, nil
}

func (relayDiscovery) HasRelays() bool { return true }
func (relayDiscovery) RelayPath(identity.PeerID) (string, bool) {
	return testRelayID, true
}

// relayedPair starts B with an echo service and a udp echo service, and A,
// which knows B by ID only and reaches it through relayDiscovery.
func relayedPair(t *testing.T) (a, b *testNode) {
	t.Helper()
	echo := newEchoBackend(t)
	kA := newKey(t)
	b = startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{
			{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}},
			{Name: "uecho", Target: testnet.NewUDPEcho(t).String(), Protocol: "udp", Allow: []string{"A"}},
		}})
	a = newNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{b.peer("B", false)}})
	a.SetDiscovery(relayDiscovery{from: kA.PeerID(), to: b})
	a.run()
	return a, b
}

// sessionOf is n's live session with peer name.
func sessionOf(n *testNode, name string) (node.SessionStatus, bool) {
	for _, s := range n.Sessions() {
		if s.Peer == name {
			return s, true
		}
	}
	return node.SessionStatus{}, false
}

// TestRelayedSession: with no direct path, streams and udp flows to a peer
// go over one relayed session, byte-exact; both sides show it as the peer's
// session on the relayed path through the relay.
func TestRelayedSession(t *testing.T) {
	a, b := relayedPair(t)
	ctx := testCtx(t)
	for range 3 {
		if err := dialEcho(ctx, a, "B", "echo", randomBytes(256<<10)); err != nil {
			t.Fatalf("A→B relayed: %v", err)
		}
	}
	f, err := a.DialFlow(ctx, "B", "uecho")
	if err != nil {
		t.Fatalf("udp flow A→B relayed: %v", err)
	}
	testnet.EchoDatagrams(t, f, []int{1, 1200, 9000})
	f.Close()
	for _, side := range []struct {
		n    *testNode
		peer string
	}{{a, "B"}, {b, "A"}} {
		s, ok := sessionOf(side.n, side.peer)
		if !ok || s.Carrier != transport.CarrierRelayed || s.Path != node.PathRelayed || s.Relay != testRelayID || s.Initiator != (side.n == a) {
			t.Fatalf("%s's session with %s: %+v (found %v); want one relayed through %s", side.n.Name(), side.peer, s, ok, testRelayID)
		}
		ps, _ := peerState(side.n, side.peer)
		if ps.State != node.Connected || ps.Path != node.PathRelayed || ps.Relay != testRelayID {
			t.Fatalf("%s's peer %s: %+v; want connected, relayed through %s", side.n.Name(), side.peer, ps, testRelayID)
		}
	}
	if len(a.Sessions()) != 1 {
		t.Fatalf("A has %d sessions, want the one relayed session for every stream", len(a.Sessions()))
	}
}

// TestRelayedToDirect: a transfer that starts on a relayed session goes on
// byte-exact when a direct path appears and a direct session replaces the
// relayed one; new streams then go direct.
func TestRelayedToDirect(t *testing.T) {
	a, b := relayedPair(t)
	ctx := testCtx(t)
	c, err := a.DialService(ctx, "B", "echo")
	if err != nil {
		t.Fatal(err)
	}
	bound(c, failBound)
	data := randomBytes(1 << 20)
	half := len(data) / 2
	got := make([]byte, len(data))
	if _, err := c.Write(data[:half]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got[:half]); err != nil {
		t.Fatalf("first half over the relay: %v", err)
	}
	if s, _ := sessionOf(a, "B"); s.Carrier != transport.CarrierRelayed {
		t.Fatalf("A's session before the direct path: %+v, want relayed", s)
	}

	a.AddAddresses(b.ID(), node.SourceMDNS, []string{b.addr}) // a punched hole, say
	waitFor(t, "A's session with B to go direct", func() bool {
		s, ok := sessionOf(a, "B")
		return ok && s.Carrier == transport.CarrierQUIC && s.Path == node.PathDirect
	})
	waitFor(t, "B's session with A to go direct", func() bool {
		s, ok := sessionOf(b, "A")
		return ok && s.Carrier == transport.CarrierQUIC
	})

	if _, err := c.Write(data[half:]); err != nil {
		t.Fatalf("second half on the retiring relayed session: %v", err)
	}
	c.CloseWrite()
	if _, err := io.ReadFull(c, got[half:]); err != nil {
		t.Fatalf("second half back: %v", err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after the echo: %d more bytes, %v; want EOF", len(rest), err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("the transfer across the move differs from what was sent")
	}
	c.Close()
	if err := dialEcho(ctx, a, "B", "echo", randomBytes(64<<10)); err != nil {
		t.Fatalf("a new stream after the move: %v", err)
	}
	if ps, _ := peerState(a, "B"); ps.Path != node.PathDirect || ps.Relay != "" {
		t.Fatalf("A's peer B after the move: %+v, want direct", ps)
	}
}
