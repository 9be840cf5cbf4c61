package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
)

// TestDuplicateSessionsLowerInitiatorWins forces the case the maintainer
// test only usually hits: both sides complete a dial to each other, and each
// adopts its own dial and the other's in whatever order the accept loop
// gives. Both must keep the session the lower peer ID initiated.
func TestDuplicateSessionsLowerInitiatorWins(t *testing.T) {
	for round := range 10 {
		var keys [2]identity.PrivateKey
		for i := range keys {
			k, err := identity.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			keys[i] = k
		}
		var nodes [2]*Node
		for i := range nodes {
			other := keys[1-i]
			n, err := New(Config{Key: keys[i], Name: []string{"A", "B"}[i], Listen: []string{"127.0.0.1:0"},
				Peers: []Peer{{Name: []string{"B", "A"}[i], ID: other.PeerID()}}})
			if err != nil {
				t.Fatal(err)
			}
			nodes[i] = n
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		var runs sync.WaitGroup
		for _, n := range nodes {
			runs.Go(func() { n.Run(ctx) })
		}
		var dials sync.WaitGroup
		for i, n := range nodes {
			other := nodes[1-i]
			dials.Go(func() {
				s, err := n.ep.Dial(ctx, other.ID(), other.ListenAddrs()[0])
				var ce *transport.CloseError
				if errors.As(err, &ce) && ce.Remote && ce.Code == transport.CodeDuplicate {
					// The other side already adopted the session that wins
					// and refused this one: the rule at work.
					return
				}
				if err != nil {
					t.Errorf("round %d: %s dial: %v", round, n.Name(), err)
					return
				}
				n.adopt(s)
			})
		}
		dials.Wait()
		lowerIsA := nodes[0].ID().Less(nodes[1].ID())
		deadline := time.Now().Add(15 * time.Second)
		for {
			sa, sb := nodes[0].Sessions(), nodes[1].Sessions()
			if len(sa) == 1 && len(sb) == 1 && sa[0].Initiator == lowerIsA && sb[0].Initiator == !lowerIsA {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: sessions A %+v, B %+v; want one each, initiated by the lower ID (A lower: %v)",
					round, sa, sb, lowerIsA)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, _, err := nodes[0].Ping(ctx, "B"); err != nil {
			t.Errorf("round %d: ping over the survivor: %v", round, err)
		}
		cancel()
		runs.Wait()
	}
}
