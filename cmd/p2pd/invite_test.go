package main

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/identity"
)

func TestAddObserved(t *testing.T) {
	have := []config.InviteAddr{{IP: netip.MustParseAddr("10.0.0.5"), UDP: 4242, TCP: 4242}}
	got := addObserved(slices.Clone(have), []string{
		"/ip4/10.0.0.5/udp/4242/quic-v1/p2p/12D3KooWx",         // already listed
		"/ip4/203.0.113.7/udp/61000/quic-v1/p2p/12D3KooWx",     // observed behind a NAT
		"/ip6/2001:db8::7/udp/4242/quic-v1/p2p/12D3KooWx",      // another family
		"/ip4/127.0.0.1/udp/4242/quic-v1/p2p/12D3KooWx",        // loopback
		"/ip6/fe80::1/udp/4242/quic-v1/p2p/12D3KooWx",          // link-local
		"/ip4/203.0.113.8/tcp/4242/p2p/12D3KooWx",              // not the overlay's port
		"/ip4/198.51.100.1/udp/4242/quic-v1/p2p/R/p2p-circuit", // a relay circuit
		"/ip4/198.51.100.2/udp/0/quic-v1", "/ip4/x/udp/1/quic-v1", "garbage", "",
	})
	want := append(have, config.InviteAddr{IP: netip.MustParseAddr("203.0.113.7"), UDP: 61000},
		config.InviteAddr{IP: netip.MustParseAddr("2001:db8::7"), UDP: 4242})
	if !slices.Equal(got, want) {
		t.Fatalf("addObserved = %v, want %v", got, want)
	}
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := config.Invite{ID: key.PeerID(), Name: "n", Addrs: got}
	if _, err := inv.AppendText(nil); err != nil {
		t.Fatalf("the invite does not encode: %v", err)
	}
}
