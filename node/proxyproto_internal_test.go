package node

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// relayedSource is the source of a stream of a relayed session: its remote
// address is the circuit through the relay, which is not the peer's.
var relayedSource = addrPort(transport.RelayAddr{Relay: "12D3KooWRelay", Circuit: "/ip4/192.0.2.1/udp/4242/quic-v1/p2p/12D3KooWRelay/p2p-circuit"})

// TestProxyHeaderRelayed: without a source address the header says
// AF_UNSPEC, carries no address block and still names the peer.
func TestProxyHeaderRelayed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	backend, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	backend.SetDeadline(time.Now().Add(10 * time.Second))

	if relayedSource.IsValid() {
		t.Fatalf("a relayed stream has source %v, want none", relayedSource)
	}
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: Config{TargetTimeout: 10 * time.Second}}
	cfg := Service{Name: "www", Target: ln.Addr().String(), ProxyProtocol: ProxyProtocolV2}
	if err := n.writeProxyHeader(target, relayedSource, k.PeerID(), "web1", cfg); err != nil {
		t.Fatal(err)
	}
	id := k.PeerID().String()
	want := append([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x00"), 0, byte(3+len(id)+3+4), 0xE0, 0, byte(len(id)))
	want = append(append(want, id...), 0xE1, 0, 4, 'w', 'e', 'b', '1')
	got := make([]byte, len(want))
	if _, err := io.ReadFull(backend, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the backend got\n%x\nwant\n%x", got, want)
	}

	cfg.ProxyProtocol = "v1"
	err = n.writeProxyHeader(target, relayedSource, k.PeerID(), "web1", cfg)
	if err == nil || !strings.Contains(err.Error(), `service "www": proxy_protocol "v1" is not known; use "v2"`) {
		t.Errorf("an unknown proxy_protocol: %v", err)
	}
	target.Close()
	if rest, err := io.ReadAll(backend); err != nil || len(rest) != 0 {
		t.Errorf("after the refused header the backend got %q, %v; want nothing", rest, err)
	}
}
