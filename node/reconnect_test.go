package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// restartB starts a stopped B again on the same port with the same key,
// with an echo service on a fresh backend so the test can tell the two apart.
// B2 lists A without an address: only A's side may reconnect.
func restartB(t *testing.T, old *testNode, a *testNode) (*testNode, *echoBackend) {
	echo := newEchoBackend(t)
	b := startNode(t, node.Config{Name: "B", Key: old.key, Listen: []string{old.addr},
		Peers:    []node.Peer{a.peer("A", false)},
		Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}})
	return b, echo
}

// reconnectPair starts A (which has B's address) and B, and connects them.
// A keeps the session alive every second instead of every ten. After a
// crash, A's next packet to the restarted B (same key, so the same stateless
// reset key) must draw a stateless reset that ends the stale session.
// quic-go answers only packets longer than 42 bytes with a reset, so this
// holds only while the keepalives are padded past that (a bare QUIC PING
// from an idle session is 25 bytes, and then the stale session lived on
// until the idle timeout).
func reconnectPair(t *testing.T) (a, b *testNode) {
	kA := newKey(t)
	echo := newEchoBackend(t)
	b = newNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}})
	b.run()
	a = startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{alwaysOn(b.peer("B", true))},
		Transport: transport.Config{KeepAlive: time.Second}})
	if err := dialEcho(testCtx(t), a, "B", "echo", randomBytes(4096)); err != nil {
		t.Fatalf("A→B before the restart: %v", err)
	}
	return a, b
}

// stopB stops B for a restart. Graceful: Run's context ends, so B tells A
// it is going away. Crash: B's sockets close before anything can tell A, as
// when the process is killed; the link is let go quiet first, as it is
// after an idle period, so that A learns of the crash only from its
// keepalives.
func stopB(b *testNode, crash bool) {
	if crash {
		time.Sleep(300 * time.Millisecond)
		node.Crash(b.Node)
	}
	b.stop()
}

var stopModes = map[bool]string{false: "graceful", true: "crash"}

// TestReconnectByMaintainer stops B and starts it again on the same port
// with the same key. A's maintainer alone must bring the peer back.
func TestReconnectByMaintainer(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(stopModes[crash], func(t *testing.T) {
			a, b := reconnectPair(t)
			stopB(b, crash)
			restarted := time.Now()
			_, echo2 := restartB(t, b, a)
			// RELIABILITY asks for about ten seconds; A's keepalive is one.
			waitWithin(t, 10*time.Second, "A's maintainer to reconnect to the restarted B", func() bool {
				ps, ok := peerState(a, "B")
				return ok && ps.State == node.Connected && ps.LastHandshake.After(restarted)
			})
			if err := dialEcho(testCtx(t), a, "B", "echo", randomBytes(4096)); err != nil {
				t.Fatalf("A→B after the reconnect: %v", err)
			}
			if echo2.Accepted() != 1 {
				t.Fatalf("restarted B's backend accepted %d connections, want 1", echo2.Accepted())
			}
		})
	}
}

// TestReconnectByDial is the same restart, but A opens a stream at once:
// DialService, retried, must reach the new B.
func TestReconnectByDial(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(stopModes[crash], func(t *testing.T) {
			a, b := reconnectPair(t)
			stopB(b, crash)
			_, echo2 := restartB(t, b, a)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var err error
			for ctx.Err() == nil {
				if err = dialEcho(ctx, a, "B", "echo", randomBytes(4096)); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("A→restarted B, retried for 10s: %v", err)
			}
			if echo2.Accepted() != 1 {
				t.Fatalf("restarted B's backend accepted %d connections, want 1", echo2.Accepted())
			}
		})
	}
}
