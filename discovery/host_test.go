package discovery

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// TestStrangersSpendNoTrustedTokens: a stranger whose handshakes libp2p
// refuses (the gater, after the scope opened) from a trusted peer's address
// (its NAT) does not lock that peer out of libp2p: its next connections,
// in and out, still open. libp2p's per-IP rate limit, spent before the
// gater, refused them after 64 of the stranger's.
func TestStrangersSpendNoTrustedTokens(t *testing.T) {
	rm, err := newResourceManager()
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	for i := range 4 * connsPerIP {
		s, err := rm.OpenConnection(network.DirInbound, false, ma.StringCast(fmt.Sprintf("/ip4/198.51.100.7/udp/%d/quic-v1", 5000+i)))
		if err != nil {
			t.Fatalf("the stranger's connection %d: %v", i+1, err)
		}
		s.Done() // refused by the gater: the scope ends at once
	}
	shared := ma.StringCast("/ip4/198.51.100.7/udp/4242/quic-v1")
	for _, dir := range []network.Direction{network.DirInbound, network.DirOutbound} {
		s, err := rm.OpenConnection(dir, false, shared)
		if err != nil {
			t.Fatalf("the trusted peer behind the same address, %v: %v", dir, err)
		}
		defer s.Done()
	}
	// The count of live connections per address still holds.
	var live []network.ConnManagementScope
	defer func() {
		for _, s := range live {
			s.Done()
		}
	}()
	for i := range connsPerIP + 1 {
		s, err := rm.OpenConnection(network.DirInbound, false, ma.StringCast(fmt.Sprintf("/ip4/203.0.113.9/udp/%d/quic-v1", 6000+i)))
		if err != nil {
			if i < connsPerIP {
				t.Fatalf("live connection %d of %d refused: %v", i+1, connsPerIP, err)
			}
			return
		}
		live = append(live, s)
	}
	t.Fatalf("%d live connections from one address were taken; want at most %d", connsPerIP+1, connsPerIP)
}
