package discovery

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pd/p2pd/identity"
)

// newPlainHost is a stock libp2p host (QUIC on loopback) with key k: a
// stranger to the overlay.
func newPlainHost(t *testing.T, k identity.PrivateKey) host.Host {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(k.Ed25519())
	if err != nil {
		t.Fatal(err)
	}
	hc := baseHostConfig(priv)
	hc.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	parts, err := newHostParts()
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHost(parts, hc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// pingOnce opens a ping stream from h to p and reports whether a round trip
// completed.
func pingOnce(h host.Host, p peer.ID) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res := <-ping.Ping(ctx, h, p)
	return res.Error
}

func TestGaterKeepsStrangersOut(t *testing.T) {
	a := newNode(t, "127.0.0.1:0", nil)
	xKey := newKey(t)
	x := newPlainHost(t, xKey)
	aInfo := a.info(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A stranger dials A: the connection is refused after the handshake
	// and no stream gets through.
	x.Connect(ctx, aInfo) // may report success before A closes it
	if err := pingOnce(x, aInfo.ID); err == nil {
		t.Fatal("an untrusted host pinged A")
	}
	if n := len(a.d.host.Network().ConnsToPeer(x.ID())); n != 0 {
		t.Fatalf("A holds %d connections to an untrusted host", n)
	}
	// A does not dial a stranger either.
	if err := a.d.host.Connect(ctx, peer.AddrInfo{ID: x.ID(), Addrs: x.Addrs()}); err == nil {
		t.Fatal("A connected to an untrusted host")
	}

	// Trusted at run time: the next connection is admitted.
	a.trust.set(xKey.PeerID(), true)
	x.Network().ClosePeer(aInfo.ID)
	// The refused attempts left x in libp2p's dial backoff for A's address.
	if sw, ok := x.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(aInfo.ID)
	}
	if err := x.Connect(ctx, aInfo); err != nil {
		t.Fatalf("trusted host connect: %v", err)
	}
	if err := pingOnce(x, aInfo.ID); err != nil {
		t.Fatalf("trusted host ping: %v", err)
	}

	// Removed again and reloaded: A closes the connection.
	a.trust.set(xKey.PeerID(), false)
	a.d.Reload()
	deadline := time.Now().Add(5 * time.Second)
	for x.Network().Connectedness(aInfo.ID) == network.Connected {
		if time.Now().After(deadline) {
			t.Fatal("A kept the connection of a peer removed from the trust list")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGaterAdmitsBootstrapAndRelays(t *testing.T) {
	boot, relay, stranger := newKey(t).PeerID(), newKey(t).PeerID(), newKey(t).PeerID()
	bp, _ := toPeer(boot)
	rp, _ := toPeer(relay)
	sp, _ := toPeer(stranger)
	g := newGater(func(identity.PeerID) bool { return false },
		[]peer.AddrInfo{{ID: bp}}, []peer.AddrInfo{{ID: rp}})
	for _, c := range []struct {
		p    peer.ID
		want bool
	}{{bp, true}, {rp, true}, {sp, false}} {
		if got := g.InterceptPeerDial(c.p); got != c.want {
			t.Errorf("InterceptPeerDial(%s) = %v, want %v", c.p, got, c.want)
		}
		if got := g.InterceptSecured(network.DirInbound, c.p, nil); got != c.want {
			t.Errorf("InterceptSecured(%s) = %v, want %v", c.p, got, c.want)
		}
	}
	// The relay service serves trusted peers only, not the relays or
	// bootstrap nodes themselves.
	acl := relayACL{g}
	if acl.AllowReserve(bp, nil) || acl.AllowConnect(bp, nil, rp) {
		t.Error("relay ACL admits untrusted peers")
	}
}
