package discovery

import (
	"context"
	"crypto/tls"
	"errors"
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

// A connection still in its QUIC handshake holds no libp2p resource-manager
// slot on the shared port, however many there are (forged sources used to
// fill the resource manager's 256 transient slots); it counts in the
// endpoint's half-open total instead, which brings in Retry.
func TestNoResourceSlotBeforeHandshake(t *testing.T) {
	a := newNode(t, "127.0.0.1:0", nil)
	b := newNode(t, "127.0.0.1:0", nil)
	trustEachOther(a, b)
	tr := a.ep.Sockets()[0].Transport
	if tr.ConnContext == nil || tr.VerifySourceAddress == nil {
		t.Fatal("the shared quic.Transport lost the endpoint's admission hooks")
	}
	rm := a.d.host.Network().ResourceManager()
	inbound := func() int {
		var n int
		rm.ViewTransient(func(s network.ResourceScope) error { n = s.Stat().NumConnsInbound; return nil })
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const forged = 300
	for i := range forged {
		src := &net.UDPAddr{IP: net.IPv4(192, 0, 2, byte(i)), Port: 9}
		if _, err := tr.ConnContext(ctx, &quic.ClientInfo{RemoteAddr: src}); err != nil {
			t.Fatalf("half-open connection %d: %v", i, err)
		}
	}
	if got := inbound(); got != 0 {
		t.Fatalf("%d half-open connections hold %d libp2p connection slots, want 0", forged, got)
	}
	if !tr.VerifySourceAddress(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}) {
		t.Fatalf("no Retry demanded with %d connections half-open", forged)
	}
	cancel() // the connections end
	deadline := time.Now().Add(2 * time.Second)
	for tr.VerifySourceAddress(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if tr.VerifySourceAddress(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}) {
		t.Fatal("Retry still demanded after the half-open connections ended")
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

// A client that offers no protocol of the shared port fails its TLS
// handshake with no_application_protocol, the same answer as on a port of
// the overlay alone, and the port keeps serving both protocols.
func TestUnknownALPNOnSharedPort(t *testing.T) {
	a := newNode(t, "127.0.0.1:0", nil)
	b := newNode(t, "127.0.0.1:0", nil)
	trustEachOther(a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: uc}
	defer tr.Close()
	_, err = tr.Dial(ctx, a.ep.Addrs()[0], &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"bogus/9"}, MinVersion: tls.VersionTLS13}, &quic.Config{})
	var te *quic.TransportError
	const noApplicationProtocol = 0x100 + 120
	if !errors.As(err, &te) || te.ErrorCode != noApplicationProtocol {
		t.Fatalf("dial with an unknown ALPN: %v, want TLS alert no_application_protocol", err)
	}
	sess, err := b.ep.Dial(ctx, a.id, a.ep.Addrs()[0].String())
	if err != nil {
		t.Fatalf("overlay dial after the refused one: %v", err)
	}
	defer sess.Close(0)
	in, err := a.ep.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in.Close(0)
}
