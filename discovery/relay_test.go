package discovery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// In-process smoke test of the relay wiring: B holds a reservation on R
// (a static relay running the relay service for its trusted peers), and A
// reaches B through R with a relayed connection that carries streams.
func TestRelaySmoke(t *testing.T) {
	r, a, b := prepareNode(t), prepareNode(t), prepareNode(t)
	trustEachOther(a, b)
	r.trust.set(a.id, true)
	r.trust.set(b.id, true)
	r.start(t, "127.0.0.1:0", func(c *Config) { c.RelayService = true })
	withRelay := func(c *Config) { c.Relays = []string{r.p2pAddr(t)} }
	a.start(t, "127.0.0.1:0", withRelay)
	b.start(t, "127.0.0.1:0", withRelay)

	// A dials B through R only (B announces no circuit address: libp2p
	// builds those from a relay's public addresses, and R has loopback
	// only). The dial succeeds once B holds its reservation on R.
	bInfo := b.info(t)
	rInfo := r.info(t)
	via, err := ma.NewMultiaddr(fmt.Sprintf("%s/p2p/%s/p2p-circuit", rInfo.Addrs[0], rInfo.ID))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = network.WithAllowLimitedConn(ctx, "test")
	for {
		a.d.host.Network().ClosePeer(bInfo.ID)
		a.d.host.Peerstore().ClearAddrs(bInfo.ID)
		err := a.d.host.Connect(ctx, peer.AddrInfo{ID: bInfo.ID, Addrs: []ma.Multiaddr{via}})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("A connect to B through R: %v", err)
		}
		// B may not hold its reservation yet; do not let the swarm's
		// dial backoff slow the retry.
		if sw, ok := a.d.host.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(bInfo.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	conns := a.d.host.Network().ConnsToPeer(bInfo.ID)
	if len(conns) == 0 {
		t.Fatal("A has no connection to B")
	}
	if _, err := conns[0].RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT); err != nil {
		t.Fatalf("A's connection to B is not relayed: %s", conns[0].RemoteMultiaddr())
	}
	if conns[0].Stat().Limited {
		t.Fatal("relayed connection is limited; the relay service should run without limits")
	}
	if relay, ok := a.d.RelayPath(b.id); !ok || relay != rInfo.ID.String() {
		t.Fatalf("RelayPath(B) = %q, %v; want R %s", relay, ok, rInfo.ID)
	}
	res := <-ping.Ping(ctx, a.d.host, bInfo.ID)
	if res.Error != nil {
		t.Fatalf("ping over the relayed connection: %v", res.Error)
	}
	relayedEcho(t, ctx, a, b)
}

// relayedEcho runs a relayed session from a to b over one overlay stream
// on libp2p and sends 256 KiB on a stream of that session, which b echoes:
// the bytes must come back unchanged, both sides must see the relayed
// carrier through the relay, and the libp2p connection beneath must stay
// protected from the connection manager while the session lives.
func relayedEcho(t *testing.T, ctx context.Context, a, b *testNode) {
	t.Helper()
	var wg sync.WaitGroup
	defer wg.Wait()
	seen := make(chan identity.PeerID, 1)
	accepted := make(chan *transport.Session, 1)
	b.d.HandleStreams(func(id identity.PeerID, st *Stream) {
		seen <- id
		wg.Go(func() {
			s, err := b.ep.AcceptRelayed(ctx, st, id)
			if err != nil {
				t.Errorf("B: relayed session: %v", err)
				close(accepted)
				return
			}
			accepted <- s
			for {
				st, err := s.AcceptStream(ctx)
				if err != nil {
					return
				}
				if req, err := st.ReadRequest(5 * time.Second); err != nil || req.Service != "echo" {
					st.Abort()
					continue
				}
				st.Respond(transport.StatusOK)
				io.Copy(st, st)
				st.Close()
			}
		})
	})
	st, err := a.d.OpenStream(ctx, b.id)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	sa, err := a.ep.DialRelayed(ctx, st, b.id)
	if err != nil {
		t.Fatalf("A: relayed session: %v", err)
	}
	sb := <-accepted
	if sb == nil {
		t.FailNow()
	}
	relay, _ := a.d.RelayPath(b.id)
	for _, s := range []*transport.Session{sa, sb} {
		ra, ok := s.RemoteAddr().(transport.RelayAddr)
		if s.Carrier() != transport.CarrierRelayed || !ok || ra.Relay != relay {
			t.Fatalf("session carrier %q, remote %#v; want %q through %s", s.Carrier(), s.RemoteAddr(), transport.CarrierRelayed, relay)
		}
	}
	if sb.Peer() != a.id {
		t.Fatalf("B's session is with %s, want A %s", sb.Peer(), a.id)
	}
	bPeer, _ := toPeer(b.id)
	if !a.d.host.ConnManager().IsProtected(bPeer, overlayTag) {
		t.Fatal("A's connection to B is not protected while a relayed session runs on it")
	}
	es, err := sa.OpenStream(ctx, transport.Request{Kind: transport.KindTCP, Service: "echo"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 256<<10)
	rand.Read(payload)
	go func() {
		es.Write(payload)
		es.CloseWrite()
	}()
	got, err := io.ReadAll(es)
	if err != nil {
		t.Fatalf("echo read: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("echo: %d bytes back, want the %d sent unchanged", len(got), len(payload))
	}
	es.Close()
	if id := <-seen; id != a.id {
		t.Fatalf("B's handler saw peer %s, want A %s", id, a.id)
	}
	sa.Close(transport.CodeNormal)
	<-sb.Done()
	deadline := time.Now().Add(5 * time.Second)
	for a.d.host.ConnManager().IsProtected(bPeer, overlayTag) {
		if time.Now().After(deadline) {
			t.Fatal("A's connection to B is still protected after the relayed session ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
