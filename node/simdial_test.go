package node_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

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
