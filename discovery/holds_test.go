package discovery

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// TestStreamHoldsProtect: a peer's connections are protected from trimming
// while any of its overlay streams is open, and no longer once the last
// one is released; releasing twice counts once.
func TestStreamHoldsProtect(t *testing.T) {
	cm, err := connmgr.NewConnManager(connsLow, connsHigh)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	h := &streamHolds{cm: cm, n: map[peer.ID]int{}}
	p, q := peer.ID("peer-p"), peer.ID("peer-q")
	r1, r2 := h.hold(p), h.hold(p)
	rq := h.hold(q)
	if !cm.IsProtected(p, overlayTag) || !cm.IsProtected(q, overlayTag) {
		t.Fatal("peers with open streams are not protected")
	}
	r1()
	r1() // a second release of the same stream must not count
	if !cm.IsProtected(p, overlayTag) {
		t.Fatal("p lost its protection with one of its two streams still open")
	}
	r2()
	if cm.IsProtected(p, overlayTag) {
		t.Fatal("p is still protected with no stream open")
	}
	if !cm.IsProtected(q, overlayTag) {
		t.Fatal("q lost its protection when p's streams closed")
	}
	rq()
	if len(h.n) != 0 {
		t.Fatalf("counts left behind: %v", h.n)
	}
}
