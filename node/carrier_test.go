package node_test

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// freeUDPPort is a UDP port on loopback that nothing listens on now.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// freeTCPPort is a TCP port on loopback that nothing listens on now.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func sessionCarrier(n *testNode, peer string) string {
	for _, s := range n.Sessions() {
		if s.Peer == peer {
			return s.Carrier
		}
	}
	return ""
}

// TestCarrierTCPOnly: a peer with transport = "tcp" is reached over the TCP
// carrier, byte-exact.
func TestCarrierTCPOnly(t *testing.T) {
	echo := newEchoBackend(t)
	kA := newKey(t)
	tcpPort := freeTCPPort(t)
	b := startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services:  []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}},
		Transport: transport.Config{ListenTCP: []string{"127.0.0.1:" + strconv.Itoa(tcpPort)}}})
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{
		{Name: "B", ID: b.ID(), Addresses: []string{"127.0.0.1:" + strconv.Itoa(tcpPort)}, Transport: node.TransportTCP}}})
	ctx := testCtx(t)
	if err := dialEcho(ctx, a, "B", "echo", randomBytes(4<<20)); err != nil {
		t.Fatal(err)
	}
	if c := sessionCarrier(a, "B"); c != transport.CarrierTCP {
		t.Fatalf("carrier %q, want tcp", c)
	}
	if p, _ := peerState(a, "B"); p.Carrier != transport.CarrierTCP || p.CarrierReason != `transport = "tcp"` {
		t.Fatalf("peer status: carrier %q because %q", p.Carrier, p.CarrierReason)
	}
}

// retireBound is how long a replaced session may finish its streams in the
// carrier tests (30 s in a daemon).
const retireBound = 250 * time.Millisecond

// TestCarrierFallbackAndBack: with UDP to the peer dropped, an auto peer is
// reached over TCP after the happy-eyeballs delay; when UDP comes back the
// session moves to QUIC, and a connection open across the move stays
// byte-exact, also when it outlives the bound of a duplicate's retirement.
func TestCarrierFallbackAndBack(t *testing.T) {
	defer node.SetRetireTimeout(retireBound)()
	echo := newEchoBackend(t)
	kA := newKey(t)
	udpPort := freeUDPPort(t)
	relay := testnet.NewImpairedRelay(t, "127.0.0.1:"+strconv.Itoa(udpPort), testnet.Impairment{Drop: 1})
	_, port, _ := net.SplitHostPort(relay.Addr())
	b := startNode(t, node.Config{Name: "B", Listen: []string{"127.0.0.1:" + strconv.Itoa(udpPort)},
		Peers:     []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services:  []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}},
		Transport: transport.Config{ListenTCP: []string{"127.0.0.1:" + port}}})
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{
		{Name: "B", ID: b.ID(), Addresses: []string{"127.0.0.1:" + port}}}})
	ctx := testCtx(t)
	c, err := a.DialService(ctx, "B", "echo")
	if err != nil {
		t.Fatal(err)
	}
	first := randomBytes(1 << 20)
	bound(c, 40*time.Second)
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(first))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("echo over the fallback: %v", err)
	}
	if carrier := sessionCarrier(a, "B"); carrier != transport.CarrierTCP {
		t.Fatalf("carrier %q with UDP dropped, want tcp", carrier)
	}
	if p, _ := peerState(a, "B"); p.CarrierReason == "" {
		t.Fatal("no reason given for the TCP carrier")
	}

	relay.SetDrop(0)
	waitWithin(t, 3*node.QUICRetry, "the session to move to QUIC", func() bool {
		return sessionCarrier(a, "B") == transport.CarrierQUIC && sessionCarrier(b, "A") == transport.CarrierQUIC
	})
	// The connection opened over TCP finishes there, byte-exact, however
	// long it runs: well past the bound of a duplicate's retirement.
	time.Sleep(4 * retireBound)
	second := randomBytes(1 << 20)
	go func() { c.Write(second); c.CloseWrite() }()
	rest, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(rest, second) {
		t.Fatalf("the connection across the move: %d of %d bytes, %v", len(rest), len(second), err)
	}
	c.Close()
	// New ones go over QUIC.
	if err := dialEcho(ctx, a, "B", "echo", randomBytes(1<<20)); err != nil {
		t.Fatal(err)
	}
	if relay.Forwarded.Load() == 0 {
		t.Fatal("no datagram went through the relay after UDP came back")
	}
}
