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
	a, b, c := prepareNode(t), prepareNode(t), prepareNode(t)
	trustEachOther(a, b, c)
	b.start(t, "127.0.0.1:0", func(c *Config) { c.DHT = true })
	withBoot := func(c *Config) { c.DHT = true; c.Bootstrap = []string{b.p2pAddr(t)} }
	a.start(t, "127.0.0.1:0", withBoot)
	c.start(t, "127.0.0.1:0", withBoot)

	cPeer, _ := toPeer(c.id)
	aPeer, _ := toPeer(a.id)
	want := fmt.Sprintf("127.0.0.1:%d", c.port())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		// Forget what A knows of C, so that only a lookup can answer (A's
		// routing-table refresh may connect them again meanwhile; then
		// FindPeer answers from the live connection and the loop retries).
		a.d.host.Network().ClosePeer(cPeer)
		c.d.host.Network().ClosePeer(aPeer)
		a.d.host.Peerstore().ClearAddrs(cPeer)
		addrs, err := a.d.FindPeer(ctx, c.id)
		if err == nil && slices.Contains(addrs, want) {
			r, ok := waitRecord(t, a, 500*time.Millisecond, func(r Record) bool { return r.Peer == c.id && r.Source == SourceDHT })
			if ok && slices.Contains(r.Addrs, want) {
				break
			}
		}
		if ctx.Err() != nil {
			bp, _ := toPeer(b.id)
			t.Logf("A RT %d B RT %d C RT %d; A-B %v C-B %v", a.d.dht.RoutingTable().Size(), b.d.dht.RoutingTable().Size(), c.d.dht.RoutingTable().Size(), a.d.host.Network().Connectedness(bp), c.d.host.Network().Connectedness(bp))
			t.Fatalf("A.FindPeer(C) = %v, %v, and no dht record; want %s found by a lookup", addrs, err, want)
		}
		time.Sleep(100 * time.Millisecond)
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
