package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// multicastInterface reports whether the host has an up, non-loopback,
// multicast-capable interface with an address, which mDNS needs.
func multicastInterface() bool {
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagMulticast == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		if addrs, _ := ifc.Addrs(); len(addrs) > 0 {
			return true
		}
	}
	return false
}

// Two nodes on one host find each other through mDNS announcements on the
// LAN interface (multicast loops back to the sender's host), without
// loopback addresses, and the found address carries an overlay session.
func TestMDNSFindsPeer(t *testing.T) {
	if !multicastInterface() {
		t.Skip("no up, non-loopback multicast interface: mDNS cannot run here (TestLANUsable covers the address filter)")
	}
	mdnsOn := func(c *Config) { c.MDNS = true }
	a := newNode(t, "0.0.0.0:0", mdnsOn)
	b := newNode(t, "0.0.0.0:0", mdnsOn)
	trustEachOther(a, b)
	// B's first announcement may have reached A before A trusted B; a
	// trust change is applied with Reload, as the node does on reload.
	a.d.Reload()
	// A stranger announcing itself is not reported.
	c := newNode(t, "0.0.0.0:0", mdnsOn)

	r, ok := waitRecord(t, a, 15*time.Second, func(r Record) bool { return r.Peer == b.id && r.Source == SourceMDNS })
	if !ok {
		t.Fatal("A got no mDNS record for B within 15 s")
	}
	var usable string
	for _, s := range r.Addrs {
		ap, err := netip.ParseAddrPort(s)
		if err != nil || !lanUsable(ap) {
			t.Fatalf("mDNS record %v has an address that cannot belong to another host: %s", r.Addrs, s)
		}
		if int(ap.Port()) == b.port() && ap.Addr().Is4() {
			usable = s
		}
	}
	if usable == "" {
		t.Fatalf("mDNS record %v has no IPv4 address with B's port %d", r.Addrs, b.port())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := a.ep.Dial(ctx, b.id, usable)
	if err != nil {
		t.Fatalf("overlay dial to the mDNS address %s: %v", usable, err)
	}
	sess.Close(0)
	if _, ok := waitRecord(t, a, 500*time.Millisecond, func(r Record) bool { return r.Peer == c.id }); ok {
		t.Fatal("A reported an untrusted peer")
	}
	// Trusting it later and reloading reports what mDNS saw.
	a.trust.set(c.id, true)
	a.d.Reload()
	r, ok = waitRecord(t, a, 5*time.Second, func(r Record) bool { return r.Peer == c.id })
	if !ok || r.Source != SourceMDNS || !slices.ContainsFunc(r.Addrs, func(s string) bool {
		return s == fmt.Sprintf("%s:%d", netip.MustParseAddrPort(usable).Addr(), c.port())
	}) {
		t.Fatalf("after trusting C: record %+v, %v", r, ok)
	}
}

// TestMDNSAnnouncementBounded: an mDNS announcement (unauthenticated: a LAN
// stranger can send one for a trusted peer) gives at most maxMDNSAddrs of
// its addresses to the record and the peer store, so it cannot aim 64 dials.
func TestMDNSAnnouncementBounded(t *testing.T) {
	a := newNode(t, "127.0.0.1:0", nil)
	target := newKey(t).PeerID()
	a.trust.set(target, true)
	tp, _ := toPeer(target)
	var addrs []ma.Multiaddr
	for i := range 64 {
		addrs = append(addrs, ma.StringCast(fmt.Sprintf("/ip4/192.0.2.%d/udp/4242/quic-v1", i+1)))
	}
	a.d.handleFound(peer.AddrInfo{ID: tp, Addrs: addrs})
	r, ok := waitRecord(t, a, 5*time.Second, func(r Record) bool { return r.Peer == target && r.Source == SourceMDNS })
	if !ok {
		t.Fatal("no record for the announced peer")
	}
	if len(r.Addrs) != maxMDNSAddrs || len(a.d.host.Peerstore().Addrs(tp)) > maxMDNSAddrs {
		t.Fatalf("one announcement of 64 addresses gave a record of %d and the peer store %d; want %d", len(r.Addrs), len(a.d.host.Peerstore().Addrs(tp)), maxMDNSAddrs)
	}
}
