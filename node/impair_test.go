package node_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/node"
)

// countHandler counts the log records with one message.
type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// impairedPair runs node B with an echo service and node A reaching it only
// through an impairing UDP relay; it returns A, A's entry for B and the
// number of sessions each side has logged as established.
func impairedPair(t *testing.T, imp testnet.Impairment) (a *testNode, bPeer node.Peer, established func() (int64, int64)) {
	t.Helper()
	a, bPeer, established, _ = impairedPairRelay(t, imp)
	return a, bPeer, established
}

// impairedPairRelay is impairedPair that also returns the relay.
func impairedPairRelay(t *testing.T, imp testnet.Impairment) (a *testNode, bPeer node.Peer, established func() (int64, int64), relay *testnet.ImpairedRelay) {
	t.Helper()
	echo := newEchoBackend(t)
	var upA, upB atomic.Int64
	b := startNode(t, node.Config{Name: "b", Logger: slog.New(countHandler{"session established", &upB}),
		Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"a"}}}})
	relay = testnet.NewImpairedRelay(t, b.addr, imp)
	bPeer = node.Peer{Name: "b", ID: b.ID(), Addresses: []string{relay.Addr()}}
	a = startNode(t, node.Config{Name: "a", Logger: slog.New(countHandler{"session established", &upA}),
		Peers: []node.Peer{bPeer}})
	if err := b.Apply([]node.Peer{a.peer("a", false)}, []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"a"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Logf("relay: %d forwarded, %d duplicated, %d flipped, %d dropped",
			relay.Forwarded.Load(), relay.Duplicated.Load(), relay.Flipped.Load(), relay.Dropped.Load())
	})
	return a, bPeer, func() (int64, int64) { return upA.Load(), upB.Load() }, relay
}

// TestManyNATRebindings (RELIABILITY.md F4, repeated): the NAT in front of
// the dialing node moves it to a new port ten times during one proxied
// connection; after each move the connection still echoes 64 KiB
// byte-exact, and both nodes keep their one session. quic-go before v0.65
// kept the connection ID of every path its server side switched to and had
// none left to validate a third new path: the session went silent until its
// idle timeout.
func TestManyNATRebindings(t *testing.T) {
	a, _, established, relay := impairedPairRelay(t, testnet.Impairment{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := a.DialService(ctx, "b", "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	bound(c, 60*time.Second)
	for i := range 10 {
		if err := relay.Rebind(); err != nil {
			t.Fatal(err)
		}
		data := randomBytes(64 << 10)
		werr := make(chan error, 1)
		go func() { _, err := c.Write(data); werr <- err }()
		got := make([]byte, len(data))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("after rebinding %d: read: %v", i+1, err)
		}
		if err := <-werr; err != nil {
			t.Fatalf("after rebinding %d: write: %v", i+1, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("after rebinding %d: echo differs", i+1)
		}
	}
	if ua, ub := established(); ua != 1 || ub != 1 {
		t.Errorf("sessions established: a %d, b %d; want 1 each", ua, ub)
	}
}

// TestImpairedPath (RELIABILITY.md F6, F11): through a relay that delays,
// jitters (and so reorders), duplicates or corrupts datagrams, 2 MiB echo
// byte-exact, over one session.
func TestImpairedPath(t *testing.T) {
	for name, imp := range map[string]testnet.Impairment{
		"jitter and duplicates": {Delay: 5 * time.Millisecond, Jitter: 10 * time.Millisecond, Dup: 0.01, Seed: 1},
		"2% corrupted":          {Delay: time.Millisecond, Flip: 0.02, Seed: 2},
		"5% corrupted":          {Delay: time.Millisecond, Flip: 0.05, Seed: 3},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, _, established := impairedPair(t, imp)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if err := dialEcho(ctx, a, "b", "echo", randomBytes(2<<20)); err != nil {
				t.Fatal(err)
			}
			if ua, ub := established(); ua != 1 || ub != 1 {
				t.Errorf("sessions established: a %d, b %d; want 1 each", ua, ub)
			}
		})
	}
}

// TestHandshakesUnderCorruption (RELIABILITY.md F5, F11 at 30 %): with
// almost a third of the datagrams corrupted each way, 10 new sessions in a
// row each come up and echo 1 KB, all within 60 s.
func TestHandshakesUnderCorruption(t *testing.T) {
	if testing.Short() {
		t.Skip("takes up to a minute")
	}
	t.Parallel()
	a, bPeer, established := impairedPair(t, testnet.Impairment{Flip: 0.30, Seed: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const rounds = 10
	for i := range rounds {
		if i > 0 { // a new session: drop b and trust it again
			if err := a.Apply(nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := a.Apply([]node.Peer{bPeer}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := dialEcho(ctx, a, "b", "echo", randomBytes(1024)); err != nil {
			t.Fatalf("session %d of %d: %v", i+1, rounds, err)
		}
	}
	if ua, _ := established(); ua < rounds {
		t.Errorf("a established %d sessions, want at least %d", ua, rounds)
	}
}

// TestLongRTT (RELIABILITY.md F7): at 750 ms each way (a 1.5 s round trip)
// exactly one session comes up, and it carries an echo.
func TestLongRTT(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 10 s")
	}
	t.Parallel()
	a, _, established := impairedPair(t, testnet.Impairment{Delay: 750 * time.Millisecond, Seed: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := dialEcho(ctx, a, "b", "echo", []byte("over a long path")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // room for a spurious second handshake to show
	if ua, ub := established(); ua != 1 || ub != 1 {
		t.Errorf("sessions established: a %d, b %d; want exactly 1 each", ua, ub)
	}
}
