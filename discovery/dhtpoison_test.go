package discovery

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protodelim"
)

// maliciousDHT is a libp2p host that answers every request of the private
// DHT with the closer peers it is given.
func maliciousDHT(t *testing.T, closer []*pb.Message_Peer) (host.Host, *atomic.Int64) {
	t.Helper()
	h := newPlainHost(t, newKey(t))
	var asked atomic.Int64
	h.SetStreamHandler(DHTPrefix+"/kad/1.0.0", func(s network.Stream) {
		defer s.Close()
		r := bufio.NewReader(s)
		for {
			var req pb.Message
			if err := protodelim.UnmarshalFrom(r, &req); err != nil {
				return
			}
			asked.Add(1)
			resp := &pb.Message{Type: req.Type, Key: req.Key, CloserPeers: closer}
			if _, err := protodelim.MarshalTo(s, resp); err != nil {
				return
			}
		}
	})
	return h, &asked
}

func randomPeerID(t *testing.T) peer.ID {
	b := make([]byte, 32)
	rand.Read(b)
	m, err := mh.Sum(b, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return peer.ID(m)
}

// TestDHTAnswerCannotAimDials: a DHT peer (trusted, or a bootstrap node)
// answers a lookup of a trusted, offline peer T with 64 addresses of its
// choice, and 50 made-up peers with 64 addresses each. The node keeps at
// most maxPeerAddrs of an answer's addresses for a peer, so it sends QUIC
// Initials to at most that many of the chosen ports (before, all 64 were
// kept, and dialled in turn).
func TestDHTAnswerCannotAimDials(t *testing.T) {
	const victims = 64
	var mu sync.Mutex
	hit := map[int]int{} // victim port → datagrams
	var victimAddrs [][]byte
	for range victims {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		port := c.LocalAddr().(*net.UDPAddr).Port
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := c.ReadFrom(buf); err != nil {
					return
				}
				mu.Lock()
				hit[port]++
				mu.Unlock()
			}
		}()
		victimAddrs = append(victimAddrs, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port)).Bytes())
	}
	target := newKey(t).PeerID()
	tp, _ := toPeer(target)
	closer := []*pb.Message_Peer{{Id: []byte(tp), Addrs: victimAddrs}}
	for i := range 50 {
		var addrs [][]byte
		for j := range 64 {
			addrs = append(addrs, ma.StringCast(fmt.Sprintf("/ip4/10.0.%d.%d/udp/4242/quic-v1", i, j)).Bytes())
		}
		closer = append(closer, &pb.Message_Peer{Id: []byte(randomPeerID(t)), Addrs: addrs})
	}
	m, asked := maliciousDHT(t, closer)
	mid, _ := fromPeer(m.ID())
	a := prepareNode(t)
	a.trust.set(mid, true)
	a.trust.set(target, true)
	a.start(t, "127.0.0.1:0", func(c *Config) { c.DHT = true; c.Bootstrap = []string{fmt.Sprintf("%s/p2p/%s", m.Addrs()[0], m.ID())} })
	deadline := time.Now().Add(10 * time.Second)
	for a.d.dht.RoutingTable().Size() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := a.d.FindPeer(ctx, target)
	time.Sleep(2 * time.Second) // the host's dials to T
	ps := a.d.host.Peerstore()
	mu.Lock()
	ports := len(hit)
	mu.Unlock()
	t.Logf("FindPeer(T) = %d addresses (%v); M asked %d times; T has %d in the peer store; %d of %d chosen ports got datagrams",
		len(addrs), err, asked.Load(), len(ps.Addrs(tp)), ports, victims)
	if asked.Load() == 0 {
		t.Fatal("the lookup never asked the DHT peer")
	}
	if len(addrs) > maxPeerAddrs || len(ps.Addrs(tp)) > maxPeerAddrs {
		t.Errorf("one answer left %d addresses of T in FindPeer and %d in the peer store; want at most %d", len(addrs), len(ps.Addrs(tp)), maxPeerAddrs)
	}
	if ports > maxPeerAddrs {
		t.Errorf("one DHT answer made the node send to %d ports of its choice; want at most %d", ports, maxPeerAddrs)
	}
	for _, p := range ps.PeersWithAddrs() {
		if n := len(ps.Addrs(p)); n > maxPeerAddrs && p != a.d.host.ID() {
			t.Errorf("peer %s has %d addresses in the peer store; want at most %d", p, n, maxPeerAddrs)
			break
		}
	}
}

// TestPunchFilterBoundsRemote: the addresses a peer's hole-punch CONNECT
// names for this node to dial are capped at maxPeerAddrs, undialable ones
// dropped first; this node's own are sent as they are.
func TestPunchFilterBoundsRemote(t *testing.T) {
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/udp/0/quic-v1"), ma.StringCast("/ip4/224.0.0.1/udp/4242/quic-v1")}
	for i := range 64 {
		addrs = append(addrs, ma.StringCast(fmt.Sprintf("/ip4/198.51.100.%d/udp/4242/quic-v1", i+1)))
	}
	got := punchFilter{}.FilterRemote("", addrs)
	if len(got) != maxPeerAddrs || !got[0].Equal(addrs[2]) {
		t.Fatalf("a CONNECT of %d addresses left %v; want the first %d dialable ones", len(addrs), got, maxPeerAddrs)
	}
	if local := (punchFilter{}).FilterLocal("", addrs); len(local) != len(addrs) {
		t.Fatalf("this node's own addresses were cut to %d", len(local))
	}
}
