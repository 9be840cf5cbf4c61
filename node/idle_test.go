package node_test

import (
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/node"
)

// TestSessionsOnDemand: peers that are not always_on get no session until
// something uses them; the session closes after the idle timeout on both
// sides with no error shown, not while a stream is open, and the next use
// dials again, byte-exact across the close.
func TestSessionsOnDemand(t *testing.T) {
	echo := newEchoBackend(t)
	kA := newKey(t)
	b := startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}}, SessionIdle: 500 * time.Millisecond,
		Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}})
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{b.peer("B", true)}, SessionIdle: 500 * time.Millisecond})
	time.Sleep(time.Second) // a maintainer would have dialed by now
	if s := a.Sessions(); len(s) != 0 {
		t.Fatalf("sessions before any use: %+v", s)
	}
	if st, _ := peerState(a, "B"); st.State != node.Idle {
		t.Fatalf("unused on-demand peer: state %v", st.State)
	}
	ctx := testCtx(t)
	data := randomBytes(256 << 10)
	if err := dialEcho(ctx, a, "B", "echo", data); err != nil {
		t.Fatal(err)
	}
	if len(a.Sessions()) != 1 {
		t.Fatal("no session after a use")
	}
	// A stream held open keeps the session past the idle timeout.
	c, err := a.DialService(ctx, "B", "echo")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if len(a.Sessions()) != 1 || len(b.Sessions()) != 1 {
		t.Fatal("a session with an open stream was closed as idle")
	}
	if err := echoRoundTrip(c, data[:1000]); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "the idle session to close on both sides", func() bool {
		sa, _ := peerState(a, "B")
		sb, _ := peerState(b, "A")
		return len(a.Sessions()) == 0 && len(b.Sessions()) == 0 && sa.State != node.Connected && sb.State != node.Connected
	})
	for _, n := range []*testNode{a, b} {
		peer := "B"
		if n == b {
			peer = "A"
		}
		if st, _ := peerState(n, peer); st.State != node.Idle || st.LastError != "" {
			t.Fatalf("%s after the idle close: state %v, error %q", n.Name(), st.State, st.LastError)
		}
	}
	// The next use dials again, from either side.
	if err := dialEcho(ctx, a, "B", "echo", data); err != nil {
		t.Fatalf("after the idle close: %v", err)
	}
}

// TestFirstContactBothWays: two on-demand peers use each other at the same
// moment, many times over; every connection succeeds (a stream on the
// session that loses the simultaneous dial is served or moved, never
// failed), and one session remains.
func TestFirstContactBothWays(t *testing.T) {
	echo := newEchoBackend(t)
	kA, kB := newKey(t), newKey(t)
	b := newNode(t, node.Config{Name: "B", Key: kB, Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}, SessionIdle: 200 * time.Millisecond})
	a := newNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{b.peer("B", true)},
		Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"B"}}}, SessionIdle: 200 * time.Millisecond})
	if err := b.Apply([]node.Peer{a.peer("A", true)}, []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}); err != nil {
		t.Fatal(err)
	}
	a.run()
	b.run()
	ctx := testCtx(t)
	for round := range 5 {
		waitFor(t, "no session between rounds", func() bool { return len(a.Sessions()) == 0 && len(b.Sessions()) == 0 })
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				from, to := a, "B"
				if i%2 == 1 {
					from, to = b, "A"
				}
				errs[i] = dialEcho(ctx, from, to, "echo", randomBytes(4096))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, connection %d: %v", round, i, err)
			}
		}
	}
}
