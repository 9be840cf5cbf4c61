package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
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

// TestDuplicateLoserServesItsStreams: the higher peer ID's dial arrives
// after the lower one's session is already the peer's, so it loses the
// simultaneous dial; its initiator had no way to know and opens a stream on
// it at once (streams open early on any live session). The loser is retired
// gracefully: the stream is served and echoes 256 KiB byte-exact before the
// session closes with going-away, not as a duplicate. When the going-away
// reaches the initiator before it opens the stream, the open fails there
// with going-away, before any byte is sent, and the stream goes on the
// winner: either way the bytes arrive, and no stream is lost in between.
func TestDuplicateLoserServesItsStreams(t *testing.T) {
	kx, ky := mustKey(t), mustKey(t)
	if !kx.PeerID().Less(ky.PeerID()) {
		kx, ky = ky, kx
	}
	x, ctx := runEchoNode(t, kx, ky)

	nx, _ := kx.Public().NoisePublic()
	y, err := transport.Listen(transport.Config{Key: ky, Listen: []string{"127.0.0.1:0"}, Instance: 1,
		Trust: func(s [32]byte) (identity.PeerID, bool) { return kx.PeerID(), s == nx }})
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	won, err := x.ep.Dial(ctx, ky.PeerID(), y.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	if x.adopt(won) != won {
		t.Fatal("X did not adopt its own dial")
	}
	lost, err := y.Dial(ctx, kx.PeerID(), x.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	req := transport.Request{Kind: transport.KindTCP, Service: "echo"}
	st, err := lost.OpenStreamEarly(ctx, req, 5*time.Second, nil)
	var gone *transport.CloseError
	if errors.As(err, &gone) && gone.Code == transport.CodeGoingAway {
		t.Log("the going-away came first: the stream goes on the winner")
		winner, aerr := y.Accept(ctx)
		if aerr != nil {
			t.Fatal(aerr)
		}
		defer winner.Close(transport.CodeNormal)
		st, err = winner.OpenStreamEarly(ctx, req, 5*time.Second, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 256<<10)
	rand.Read(data)
	go func() { st.Write(data); st.CloseWrite() }()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stream on the losing session: %d of %d bytes, err %v", len(got), len(data), err)
	}
	st.Close()
	select {
	case <-lost.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the losing session is still open 10 s after its last stream")
	}
	var ce *transport.CloseError
	if err := lost.Err(); !errors.As(err, &ce) || ce.Code != transport.CodeGoingAway {
		t.Fatalf("the losing session ended with %v, want going-away", err)
	}
	if ss := x.Sessions(); len(ss) != 1 || !ss[0].Initiator {
		t.Fatalf("X's sessions %+v; want its own dial only", ss)
	}
}
