package node_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// sessionRemote is the address n's session with peer over carrier comes
// from, as n sees it.
func sessionRemote(t *testing.T, n *testNode, peer, carrier string) netip.AddrPort {
	t.Helper()
	for _, s := range n.Sessions() {
		if s.Peer == peer && s.Carrier == carrier {
			ap, err := netip.ParseAddrPort(s.Remote)
			if err != nil {
				t.Fatalf("session remote %q: %v", s.Remote, err)
			}
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	t.Fatalf("no %s session with %s: %+v", carrier, peer, n.Sessions())
	return netip.AddrPort{}
}

func checkSeen(t *testing.T, s testnet.ProxySeen, a *testNode, src, dst netip.AddrPort) {
	t.Helper()
	if s.Err != nil {
		t.Fatalf("backend: %v", s.Err)
	}
	h := s.Header
	if h.Family != 0x11 || h.Src != src || h.Dst != dst {
		t.Errorf("header: family %#x, %v -> %v; want 0x11 (TCP over IPv4), %v -> %v", h.Family, h.Src, h.Dst, src, dst)
	}
	if got := h.TLVs[0xE0]; got != a.ID().String() {
		t.Errorf("peer ID TLV 0xE0 = %q, want %q", got, a.ID())
	}
	if got := h.TLVs[0xE1]; got != "A" {
		t.Errorf("peer name TLV 0xE1 = %q, want %q (the name in the server's [[peers]])", got, "A")
	}
}

// TestProxyProtocolV2 checks what a backend behind proxy_protocol = "v2"
// sees over QUIC and over the TCP carrier, for a TCP and a unix: target, and
// that a service without it gets the payload only.
func TestProxyProtocolV2(t *testing.T) {
	tcpBack := testnet.NewProxyBackend(t, "tcp", "127.0.0.1:0", true, failBound)
	dir, err := os.MkdirTemp("", "p2pd-pp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	unixBack := testnet.NewProxyBackend(t, "unix", filepath.Join(dir, "b.sock"), true, failBound)
	plain := newEchoBackend(t)
	kA := newKey(t)
	tcpPort := freeTCPPort(t)
	srv := startNode(t, node.Config{Name: "S", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{
			{Name: "pp", Target: tcpBack.Addr(), Allow: []string{"A"}, ProxyProtocol: node.ProxyProtocolV2},
			{Name: "ppunix", Target: "unix:" + unixBack.Addr(), Allow: []string{"A"}, ProxyProtocol: node.ProxyProtocolV2},
			{Name: "plain", Target: plain.Addr(), Allow: []string{"A"}},
		},
		Transport: transport.Config{ListenTCP: []string{"127.0.0.1:" + strconv.Itoa(tcpPort)}}})
	dst := netip.MustParseAddrPort(tcpBack.Addr())

	for _, carrier := range []string{node.TransportQUIC, node.TransportTCP} {
		t.Run(carrier, func(t *testing.T) {
			addr := srv.addr
			if carrier == node.TransportTCP {
				addr = "127.0.0.1:" + strconv.Itoa(tcpPort)
			}
			a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{
				{Name: "S", ID: srv.ID(), Addresses: []string{addr}, Transport: carrier}}})
			defer a.stop()
			ctx := testCtx(t)
			data := randomBytes(256 << 10)
			if err := dialEcho(ctx, a, "S", "pp", data); err != nil {
				t.Fatal(err)
			}
			src := sessionRemote(t, srv, "A", carrier)
			if carrier == node.TransportQUIC && src.String() != a.addr {
				t.Errorf("S sees A's QUIC session from %v, want A's UDP socket %s", src, a.addr)
			}
			checkSeen(t, tcpBack.Next(t, failBound), a, src, dst)

			// A unix: target: the destination is the unspecified address.
			if err := dialEcho(ctx, a, "S", "ppunix", data); err != nil {
				t.Fatal(err)
			}
			checkSeen(t, unixBack.Next(t, failBound), a, src, netip.MustParseAddrPort("0.0.0.0:0"))
		})
	}

	// Without proxy_protocol the backend gets the payload and nothing else:
	// the echo comes back byte for byte.
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{srv.peer("S", true)}})
	if err := dialEcho(testCtx(t), a, "S", "plain", []byte("no header before this")); err != nil {
		t.Fatal(err)
	}
}
