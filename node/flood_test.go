package node_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// TestTrustedPeerStreamFlood: a trusted peer with access to nothing opens
// thousands of streams that never send a header, on new sessions again and
// again. The node's goroutines and memory stay bounded, no stream reaches a
// service, and another peer's connections still work byte-exact.
func TestTrustedPeerStreamFlood(t *testing.T) {
	echo := newEchoBackend(t)
	kFlood, kGood := newKey(t), newKey(t)
	srv := startNode(t, node.Config{
		Name:          "S",
		HeaderTimeout: 3 * time.Second,
		Peers:         []node.Peer{{Name: "flood", ID: kFlood.PeerID()}, {Name: "good", ID: kGood.PeerID()}},
		Services:      []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"good"}}},
	})
	good := startNode(t, node.Config{Name: "good", Key: kGood, Peers: []node.Peer{srv.peer("S", true)}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := dialEcho(ctx, good, "S", "echo", randomBytes(64<<10)); err != nil {
		t.Fatal(err)
	}

	// The flooder is a bare endpoint with the trusted key.
	srvNoise, _ := srv.ID().PublicKey().NoisePublic()
	flood, err := transport.Listen(transport.Config{Key: kFlood, Listen: []string{"127.0.0.1:0"},
		Trust: func(k [32]byte) (identity.PeerID, bool) { return srv.ID(), k == srvNoise }})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()

	heap0, gr0 := testnet.HeapInUse(), runtime.NumGoroutine()
	const sessions, perSession = 6, 1500
	var peakGoroutines int
	var sess []*transport.Session
	for i := range sessions {
		s, err := flood.Dial(ctx, srv.ID(), srv.addr)
		if err != nil {
			t.Fatalf("flood session %d: %v", i, err)
		}
		sess = append(sess, s)
		for j := range perSession {
			st, err := s.OpenRawStream(ctx)
			if err != nil {
				t.Fatalf("session %d stream %d: %v", i, j, err)
			}
			st.Write([]byte{1}) // a header's first byte, and no more
		}
		// Meanwhile the other peer's connections work.
		if err := dialEcho(ctx, good, "S", "echo", randomBytes(256<<10)); err != nil {
			t.Fatalf("good peer during the flood (session %d): %v", i, err)
		}
		peakGoroutines = max(peakGoroutines, runtime.NumGoroutine())
	}
	grown := int64(testnet.HeapInUse()) - int64(heap0)
	t.Logf("%d sessions × %d header-less streams: heap +%d MiB (both ends, this process), goroutines %d → peak %d",
		sessions, perSession, grown>>20, gr0, peakGoroutines)
	if echo.Accepted() != 1+sessions {
		t.Fatalf("backend accepted %d connections, want the good peer's %d", echo.Accepted(), 1+sessions)
	}
	// Both ends are in this process; the flooder's own streams and lanes
	// are part of the figure. Before the bounds one session's streams
	// alone cost ~600 MiB.
	if grown > 128<<20 {
		t.Fatalf("heap grew by %d MiB; want under 128", grown>>20)
	}
	// Per live flood session: its lanes' goroutines (flooder's and node's),
	// plus at most MaxHeaderWait waiting for headers for the whole peer.
	if limit := gr0 + node.MaxHeaderWait + sessions*perSession/transport.StreamsPerConn*12 + 200; peakGoroutines > limit {
		t.Fatalf("goroutines peaked at %d; want at most %d", peakGoroutines, limit)
	}
	for _, s := range sess {
		s.Close(transport.CodeNormal)
	}
}
