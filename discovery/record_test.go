package discovery

import (
	"net/netip"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestOverlayAddr(t *testing.T) {
	const id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	for _, c := range []struct {
		in   string
		want string // "" = rejected
	}{
		{"/ip4/192.0.2.7/udp/4242/quic-v1", "192.0.2.7:4242"},
		{"/ip4/192.0.2.7/udp/4242/quic-v1/p2p/" + id, "192.0.2.7:4242"},
		{"/ip6/2001:db8::7/udp/4242/quic-v1", "[2001:db8::7]:4242"},
		{"/ip6/::ffff:192.0.2.7/udp/4242/quic-v1", "192.0.2.7:4242"},
		{"/ip4/192.0.2.7/udp/4242/quic", ""},
		{"/ip4/192.0.2.7/tcp/4242", ""},
		{"/ip4/192.0.2.7/udp/4242/quic-v1/webtransport", ""},
		{"/ip4/192.0.2.7/udp/4242/quic-v1/p2p/" + id + "/p2p-circuit/p2p/" + id, ""},
		{"/dns4/example.com/udp/4242/quic-v1", ""},
		{"/ip4/192.0.2.7/udp/0/quic-v1", ""},
		{"/ip6zone/eth0/ip6/fe80::1/udp/4242/quic-v1", ""},
	} {
		a, err := ma.NewMultiaddr(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		ap, ok := overlayAddr(a)
		if got := ap.String(); (c.want == "" && ok) || (c.want != "" && (!ok || got != c.want)) {
			t.Errorf("overlayAddr(%s) = %s, %v; want %q", c.in, got, ok, c.want)
		}
		if ok {
			back, err := quicMultiaddr(ap)
			if err != nil {
				t.Fatalf("quicMultiaddr(%s): %v", ap, err)
			}
			if ap2, ok := overlayAddr(back); !ok || ap2 != ap {
				t.Errorf("round trip %s -> %s -> %s", ap, back, ap2)
			}
		}
	}
}

// The mDNS filter: only addresses that can belong to another host.
func TestLANUsable(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"192.0.2.7:4242", true},
		{"10.1.2.3:4242", true},
		{"169.254.1.1:4242", true},
		{"[fd00::2]:4242", true},
		{"127.0.0.1:4242", false},
		{"127.8.9.10:4242", false},
		{"[::1]:4242", false},
		{"0.0.0.0:4242", false},
		{"[::]:4242", false},
		{"224.0.0.251:5353", false},
		{"[fe80::1]:4242", false},
	} {
		if got := lanUsable(netip.MustParseAddrPort(c.in)); got != c.want {
			t.Errorf("lanUsable(%s) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestEmitterCoalesces(t *testing.T) {
	e := newEmitter()
	x, y := newKey(t).PeerID(), newKey(t).PeerID()
	e.push(Record{Peer: x, Addrs: []string{"192.0.2.1:1"}, Source: SourceMDNS})
	e.push(Record{Peer: y, Addrs: []string{"192.0.2.2:1"}, Source: SourceMDNS})
	e.push(Record{Peer: x, Addrs: []string{"192.0.2.3:1"}, Source: SourceMDNS})
	e.push(Record{Peer: x, Addrs: []string{"192.0.2.4:1"}, Source: SourceDHT})
	e.push(Record{Peer: x, Source: SourceDHT}) // no addresses: ignored
	var got []string
	for {
		r, ok := e.pop()
		if !ok {
			break
		}
		got = append(got, string(r.Source)+" "+r.Addrs[0])
	}
	want := []string{"mdns 192.0.2.3:1", "mdns 192.0.2.2:1", "dht 192.0.2.4:1"}
	if len(got) != len(want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("records %v, want %v", got, want)
		}
	}
}
