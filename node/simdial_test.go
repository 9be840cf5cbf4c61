package node_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/node"
)

// TestSimultaneousDial runs fresh node pairs that list each other with
// addresses, so both maintainers dial at Run. Each pair must settle on one
// session that both sides agree on; when both dials completed a handshake,
// the survivor is the one the lower peer ID initiated (DESIGN.md §3.6).
func TestSimultaneousDial(t *testing.T) {
	for round := range 10 {
		simultaneousRound(t, round)
		if t.Failed() {
			return
		}
	}
}

// simultaneousRound waits until both sides hold one session, the same one,
// and neither is dialing. If the lower peer's own dial got as far as
// adoption, the survivor must be that session: it wins on both sides
// whatever the order of events.
func simultaneousRound(t *testing.T, round int) {
	echo := newEchoBackend(t)
	kA, kB := newKey(t), newKey(t)
	bAddr := freeUDPAddr(t)
	logA, logB := &sessionLog{}, &sessionLog{}
	svc := []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"*"}}}
	a := newNode(t, node.Config{Name: "A", Key: kA, Services: svc, Logger: slog.New(logA),
		Peers: []node.Peer{{Name: "B", ID: kB.PeerID(), Addresses: []string{bAddr}, AlwaysOn: true}}})
	b := newNode(t, node.Config{Name: "B", Key: kB, Services: svc, Logger: slog.New(logB), Listen: []string{bAddr},
		Peers: []node.Peer{alwaysOn(a.peer("A", true))}})
	a.run()
	b.run()

	aLower := kA.PeerID().Less(kB.PeerID())
	lowerLog := map[bool]*sessionLog{true: logA, false: logB}[aLower]
	agreed := func() bool {
		sa, sb := a.Sessions(), b.Sessions()
		return len(sa) == 1 && len(sb) == 1 && sa[0].Initiator != sb[0].Initiator
	}
	deadline := time.Now().Add(failBound)
	for !agreed() || node.Dialing(a.Node, "B") || node.Dialing(b.Node, "A") {
		if time.Now().After(deadline) {
			t.Fatalf("round %d: no agreement after %v: A sessions %+v peers %+v; B sessions %+v peers %+v",
				round, failBound, a.Sessions(), a.Peers(), b.Sessions(), b.Peers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if lowerLog.outbound() {
		if got := a.Sessions()[0].Initiator; got != aLower {
			t.Errorf("round %d: the lower peer's dial was adopted, but A's survivor has initiator=A %v, want %v",
				round, got, aLower)
		}
	}

	// Streams work both ways over the survivor, and it stays the only one.
	ctx := testCtx(t)
	if err := dialEcho(ctx, a, "B", "echo", randomBytes(64<<10)); err != nil {
		t.Errorf("round %d: A→B after the race: %v", round, err)
	}
	if err := dialEcho(ctx, b, "A", "echo", randomBytes(64<<10)); err != nil {
		t.Errorf("round %d: B→A after the race: %v", round, err)
	}
	if !agreed() {
		t.Errorf("round %d: sessions after streams: A %+v, B %+v; want one each, the same", round, a.Sessions(), b.Sessions())
	}
	if _, _, err := a.Ping(ctx, "B"); err != nil {
		t.Errorf("round %d: ping A→B: %v", round, err)
	}
	a.stop()
	b.stop()
}

// sessionLog notes, from a node's log, whether one of its own dials
// reached adoption (as the new session or as a duplicate of an older one).
type sessionLog struct {
	mu  sync.Mutex // guards out
	out bool
}

func (l *sessionLog) outbound() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out
}

func (l *sessionLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *sessionLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *sessionLog) WithGroup(string) slog.Handler            { return l }

func (l *sessionLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "session established" && r.Message != "retiring duplicate session" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "session" && strings.HasPrefix(a.Value.String(), "out:") {
			l.mu.Lock()
			l.out = true
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

// freeUDPAddr returns a loopback UDP address that was free a moment ago.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// TestSimultaneousDialStreamsDuringRace opens a stream from each side while
// both maintainers are still dialing. The losing dial is refused by the
// other side as a duplicate, but a session to the peer exists: the stream
// must go over it instead of failing.
func TestSimultaneousDialStreamsDuringRace(t *testing.T) {
	for round := range 10 {
		echo := newEchoBackend(t)
		kA, kB := newKey(t), newKey(t)
		bAddr := freeUDPAddr(t)
		svc := []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"*"}}}
		a := newNode(t, node.Config{Name: "A", Key: kA, Services: svc,
			Peers: []node.Peer{{Name: "B", ID: kB.PeerID(), Addresses: []string{bAddr}, AlwaysOn: true}}})
		b := newNode(t, node.Config{Name: "B", Key: kB, Services: svc, Listen: []string{bAddr},
			Peers: []node.Peer{alwaysOn(a.peer("A", true))}})
		a.run()
		b.run()
		ctx := testCtx(t)
		var during sync.WaitGroup
		for _, c := range []struct {
			from *testNode
			to   string
		}{{a, "B"}, {b, "A"}} {
			during.Go(func() {
				if err := dialEcho(ctx, c.from, c.to, "echo", randomBytes(1024)); err != nil {
					t.Errorf("round %d: %s→%s during the race: %v", round, c.from.Name(), c.to, err)
				}
			})
		}
		during.Wait()
		a.stop()
		b.stop()
	}
}

// blockingDiscovery's lookups answer nothing until their context ends,
// like a DHT lookup for a peer that is hard to find; each lookup's end is
// reported on ended.
type blockingDiscovery struct {
	fakeDiscovery
	asked chan struct{}
	ended chan error
}

func (d blockingDiscovery) FindPeer(ctx context.Context, _ identity.PeerID) ([]string, error) {
	select {
	case d.asked <- struct{}{}:
	default:
	}
	<-ctx.Done()
	d.ended <- ctx.Err()
	return nil, ctx.Err()
}

// TestDialStopsWhenPeerDialsIn: A dials B, whom it can find only by a
// lookup, and the lookup hangs; meanwhile B dials A. A's connection takes
// B's session, A's lookup stops at once (it would otherwise run for its
// full 10 s and could start a second handshake the pair does not need),
// and A records no failure for B.
func TestDialStopsWhenPeerDialsIn(t *testing.T) {
	echo := newEchoBackend(t)
	kA, kB := newKey(t), newKey(t)
	svc := []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"*"}}}
	a := newNode(t, node.Config{Name: "A", Key: kA, Services: svc, Peers: []node.Peer{{Name: "B", ID: kB.PeerID()}}})
	disc := blockingDiscovery{asked: make(chan struct{}, 1), ended: make(chan error, 8)}
	a.SetDiscovery(disc)
	a.run()
	b := startNode(t, node.Config{Name: "B", Key: kB, Services: svc, Peers: []node.Peer{a.peer("A", true)}})

	data := randomBytes(64 << 10)
	aDone := make(chan error, 1)
	go func() { aDone <- dialEcho(testCtx(t), a, "B", "echo", data) }()
	select {
	case <-disc.asked:
	case <-time.After(failBound):
		t.Fatal("A's dial never looked B up")
	}
	if err := dialEcho(testCtx(t), b, "A", "echo", data); err != nil {
		t.Fatalf("B→A: %v", err)
	}
	select {
	case err := <-aDone:
		if err != nil {
			t.Fatalf("A→B while B's session came up: %v", err)
		}
	case <-time.After(failBound):
		t.Fatal("A's connection did not take B's session")
	}
	select {
	case err := <-disc.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("A's lookup ended with %v; want it cancelled when B's session came up", err)
		}
	case <-time.After(5 * time.Second): // the lookup's own bound is 10 s
		t.Fatal("A's lookup went on after B's session came up")
	}
	ss := a.Sessions()
	if len(ss) != 1 || ss[0].Initiator {
		t.Fatalf("A's sessions %+v; want B's alone", ss)
	}
	for deadline := time.Now().Add(failBound); node.Dialing(a.Node, "B"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("A's dial to B never ended")
		}
	}
	if ps, _ := peerState(a, "B"); ps.LastError != "" || ps.State != node.Connected {
		t.Fatalf("A's view of B: state %v, last error %q; want connected with no failure", ps.State, ps.LastError)
	}
}
