package discovery

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// TestDHTSilentPeer: a's only DHT peer, its bootstrap node b, stops
// answering DHT requests with its connection still open (a hung or
// SIGSTOPped node). A lookup through it ends within dhtRequestTimeout and
// some, not after kad-dht's own 10 s read timeout and its retry, and b
// leaves a's routing table.
func TestDHTSilentPeer(t *testing.T) {
	a, b := prepareNode(t), prepareNode(t)
	trustEachOther(a, b)
	b.start(t, "127.0.0.1:0", func(c *Config) { c.DHT = true })
	a.start(t, "127.0.0.1:0", func(c *Config) { c.DHT = true; c.Bootstrap = []string{b.p2pAddr(t)} })
	bp, _ := toPeer(b.id)
	deadline := time.Now().Add(20 * time.Second)
	for a.d.dht.RoutingTable().Find(bp) == "" {
		if time.Now().After(deadline) {
			t.Fatal("b never entered a's routing table")
		}
		time.Sleep(50 * time.Millisecond)
	}

	silenced := make(chan struct{}, 16)
	b.d.host.SetStreamHandler(DHTPrefix+"/kad/1.0.0", func(s network.Stream) {
		silenced <- struct{}{}
		io.Copy(io.Discard, s) // read every request, answer none
	})
	// Streams a opened before stay answered; new ones meet the silence.
	a.d.host.Network().ClosePeer(bp)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := a.d.dht.GetClosestPeers(ctx, "some key")
	took := time.Since(start)
	if len(silenced) == 0 {
		t.Fatalf("the lookup never asked b (err %v)", err)
	}
	if took >= 10*time.Second {
		t.Fatalf("a lookup through a silent peer took %v; want it bounded by the %v request timeout, below kad-dht's own 10 s", took, dhtRequestTimeout)
	}
	if a.d.dht.RoutingTable().Find(bp) != "" {
		t.Fatal("the silent peer is still in a's routing table")
	}
	t.Logf("lookup through a silent peer ended after %v: %v", took.Round(time.Millisecond), err)
}

// TestRequestTimeoutOption: the option finds kad-dht's message sender
// field; an upgrade that renames it fails here, not at run time.
func TestRequestTimeoutOption(t *testing.T) {
	if _, err := requestTimeout(time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDHTBootstrapOneDead: of a's two bootstrap nodes the first is dead (a
// closed port with a peer ID nobody holds); a joins through the second and
// learns of c, which joined through that one alone.
func TestDHTBootstrapOneDead(t *testing.T) {
	a, b, c := prepareNode(t), prepareNode(t), prepareNode(t)
	trustEachOther(a, b, c)
	b.start(t, "127.0.0.1:0", func(cf *Config) { cf.DHT = true })
	c.start(t, "127.0.0.1:0", func(cf *Config) { cf.DHT = true; cf.Bootstrap = []string{b.p2pAddr(t)} })
	dead := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1/p2p/%s", closedUDPPort(t), newKey(t).PeerID())
	a.start(t, "127.0.0.1:0", func(cf *Config) { cf.DHT = true; cf.Bootstrap = []string{dead, b.p2pAddr(t)} })
	cp, _ := toPeer(c.id)
	deadline := time.Now().Add(20 * time.Second)
	for a.d.dht.RoutingTable().Find(cp) == "" {
		if time.Now().After(deadline) {
			t.Fatalf("a never learned of c through its live bootstrap node; routing table %v", a.d.dht.RoutingTable().ListPeers())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// closedUDPPort is a loopback UDP port nothing listens on.
func closedUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
