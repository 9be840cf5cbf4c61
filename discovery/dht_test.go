package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// A finds C by its peer ID alone through the private DHT, both having
// bootstrapped from B; mDNS is off.
func TestDHTFindPeer(t *testing.T) {
	b := newNode(t, "127.0.0.1:0", func(c *Config) { c.DHT = true })
	withBoot := func(c *Config) { c.DHT = true; c.Bootstrap = []string{b.p2pAddr(t)} }
	a := newNode(t, "127.0.0.1:0", withBoot)
	c := newNode(t, "127.0.0.1:0", withBoot)
	trustEachOther(a, b, c)

	cPeer, _ := toPeer(c.id)
	want := fmt.Sprintf("127.0.0.1:%d", c.port())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for {
		// Forget what A knows of C, so that only a lookup can answer.
		a.d.host.Network().ClosePeer(cPeer)
		a.d.host.Peerstore().ClearAddrs(cPeer)
		addrs, err := a.d.FindPeer(ctx, c.id)
		if err == nil && slices.Contains(addrs, want) {
			got = addrs
			break
		}
		if ctx.Err() != nil {
			bp, _ := toPeer(b.id)
			t.Logf("A RT %d B RT %d C RT %d; A-B %v C-B %v", a.d.dht.RoutingTable().Size(), b.d.dht.RoutingTable().Size(), c.d.dht.RoutingTable().Size(), a.d.host.Network().Connectedness(bp), c.d.host.Network().Connectedness(bp))
			t.Fatalf("A.FindPeer(C) = %v, %v; want %s", addrs, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r, ok := waitRecord(t, a, 5*time.Second, func(r Record) bool { return r.Peer == c.id && r.Source == SourceDHT })
	if !ok || !slices.Contains(r.Addrs, want) {
		t.Fatalf("no dht record for C with %s on A's stream (FindPeer gave %v, record %+v)", want, got, r)
	}

	// The address works for the overlay.
	sess, err := a.ep.Dial(ctx, c.id, want)
	if err != nil {
		t.Fatalf("overlay dial to the found address: %v", err)
	}
	sess.Close(0)
}

// Without the DHT and without any other source FindPeer says not found.
func TestFindPeerNotFound(t *testing.T) {
	a := newNode(t, "127.0.0.1:0", nil)
	other := newKey(t).PeerID()
	a.trust.set(other, true)
	_, err := a.d.FindPeer(context.Background(), other)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindPeer(unknown) = %v, want ErrNotFound", err)
	}
	a.d.Close()
	if _, err := a.d.FindPeer(context.Background(), other); !errors.Is(err, ErrClosed) {
		t.Fatalf("FindPeer after Close = %v, want ErrClosed", err)
	}
}
