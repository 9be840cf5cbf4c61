package discovery

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
)

// In-process smoke test of the relay wiring: B holds a reservation on R
// (a static relay running the relay service for its trusted peers), and A
// reaches B through R with a relayed connection that carries streams.
func TestRelaySmoke(t *testing.T) {
	r := newNode(t, "127.0.0.1:0", func(c *Config) { c.RelayService = true })
	withRelay := func(c *Config) { c.Relays = []string{r.p2pAddr(t)} }
	a := newNode(t, "127.0.0.1:0", withRelay)
	b := newNode(t, "127.0.0.1:0", withRelay)
	trustEachOther(a, b)
	r.trust.set(a.id, true)
	r.trust.set(b.id, true)

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
	res := <-ping.Ping(ctx, a.d.host, bInfo.ID)
	if res.Error != nil {
		t.Fatalf("ping over the relayed connection: %v", res.Error)
	}
}
