package discovery

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
	"github.com/quic-go/quic-go"
)

func TestNewErrors(t *testing.T) {
	key := newKey(t)
	trust := func(identity.PeerID) bool { return true }
	newEP := func(shared bool) *transport.Endpoint {
		ep, err := transport.Listen(transport.Config{Key: key, Listen: []string{"127.0.0.1:0"},
			Trust: func([32]byte) (identity.PeerID, bool) { return identity.PeerID{}, false }, Shared: shared})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	for _, c := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"empty", Config{}, []string{"no key", "no endpoint", "no trust function"}},
		{"bootstrap", Config{Key: key, Endpoint: newEP(true), Trusted: trust, Bootstrap: []string{"/ip4/192.0.2.1/udp/4242/quic-v1"}},
			[]string{`bootstrap[0] "/ip4/192.0.2.1/udp/4242/quic-v1"`, "/p2p/<peer ID>"}},
		{"relays", Config{Key: key, Endpoint: newEP(true), Trusted: trust, Relays: []string{"nonsense"}},
			[]string{`relays[0] "nonsense"`}},
		{"unshared", Config{Key: key, Endpoint: newEP(false), Trusted: trust},
			[]string{"Shared = true"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := New(c.cfg)
			if err == nil {
				d.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// The shared transport carries libp2p's resource-manager hook: an inbound
// connection holds a scope from its first packet, and an overlay
// connection's scope is released once the endpoint has it.
func TestResourceManagerHookOnSharedPort(t *testing.T) {
	a := newNode(t, "127.0.0.1:0", nil)
	b := newNode(t, "127.0.0.1:0", nil)
	trustEachOther(a, b)
	tr := a.ep.Sockets()[0].Transport
	if tr.ConnContext == nil {
		t.Fatal("the shared quic.Transport has no ConnContext: libp2p's resource manager does not see inbound handshakes")
	}
	rm := a.d.host.Network().ResourceManager()
	inbound := func() int {
		var n int
		rm.ViewTransient(func(s network.ResourceScope) error { n = s.Stat().NumConnsInbound; return nil })
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cctx, err := tr.ConnContext(ctx, &quic.ClientInfo{RemoteAddr: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 9}})
	if err != nil {
		t.Fatal(err)
	}
	if got := inbound(); got != 1 {
		t.Fatalf("transient inbound connections during a handshake: %d, want 1", got)
	}
	if _, err := network.UnwrapConnManagementScope(cctx); err != nil {
		t.Fatalf("no scope in the connection context: %v", err)
	}
	cancel() // the connection ends
	deadline := time.Now().Add(2 * time.Second)
	for inbound() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := inbound(); got != 0 {
		t.Fatalf("transient inbound connections after the connection ended: %d", got)
	}

	// A live overlay session holds no libp2p connection slot.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	sess, err := b.ep.Dial(ctx2, a.id, a.ep.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close(0)
	in, err := a.ep.Accept(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(0)
	if got := inbound(); got != 0 {
		t.Fatalf("an established overlay session holds %d transient libp2p connections", got)
	}
}
