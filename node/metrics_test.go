package node_test

import (
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// TestStreamCounters: one echoed stream, one refused by the allow list and
// one to a service the server does not have show in the server's counters
// with configured names only: the unknown name is "other".
func TestStreamCounters(t *testing.T) {
	x := newEchoBackend(t)
	kA, kB := newKey(t), newKey(t)
	srv := startNode(t, node.Config{
		Name:     "S",
		Peers:    []node.Peer{{Name: "A", ID: kA.PeerID()}, {Name: "B", ID: kB.PeerID()}},
		Services: []node.Service{{Name: "X", Target: x.Addr(), Allow: []string{"A"}}},
	})
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{srv.peer("S", true)}})
	b := startNode(t, node.Config{Name: "B", Key: kB, Peers: []node.Peer{srv.peer("S", true)}})
	ctx := testCtx(t)

	data := randomBytes(300 << 10)
	if err := dialEcho(ctx, a, "S", "x", data); err != nil { // names match without regard to case
		t.Fatal(err)
	}
	var se *transport.StatusError
	if err := refusal(ctx, b, "S", "X"); !errors.As(err, &se) || se.Status != transport.StatusAccessDenied {
		t.Fatalf("B→X: %v, want access denied", err)
	}
	if err := refusal(ctx, a, "S", "made-up-by-the-peer"); !errors.As(err, &se) || se.Status != transport.StatusUnknownService {
		t.Fatalf("A→made-up: %v, want unknown service", err)
	}

	want := []node.StreamCount{
		{Service: "X", Result: node.StreamAccessDenied, Count: 1},
		{Service: "X", Result: node.StreamOK, Count: 1},
		{Service: node.OtherService, Result: node.StreamUnknownService, Count: 1},
	}
	waitFor(t, "the server to count three streams", func() bool { return slices.Equal(srv.StreamCounts(), want) })
	// The bytes are added when the server's splice ends, a moment after
	// the client has its echo.
	wantBytes := []node.ByteCount{{Peer: "A", Service: "X", Received: uint64(len(data)), Sent: uint64(len(data))}}
	waitFor(t, "the server to count the echoed bytes", func() bool { return slices.Equal(srv.ByteCounts(), wantBytes) })
}

// TestRefusalsLoggedSparingly: a peer that opens stream after stream to a
// service it may not use gets every one refused and counted, but the
// node logs the refusal once per 10 s, not once per stream.
func TestRefusalsLoggedSparingly(t *testing.T) {
	x := newEchoBackend(t)
	kA := newKey(t)
	var refusedLines atomic.Int64
	srv := startNode(t, node.Config{
		Name:     "S",
		Peers:    []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{{Name: "X", Target: x.Addr(), Allow: []string{"nobody"}}},
		Logger:   slog.New(countHandler{"stream refused: access denied", &refusedLines}),
	})
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{srv.peer("S", true)}})
	ctx := testCtx(t)
	const tries = 30
	for i := range tries {
		var se *transport.StatusError
		if err := refusal(ctx, a, "S", "X"); !errors.As(err, &se) || se.Status != transport.StatusAccessDenied {
			t.Fatalf("stream %d: %v, want access denied", i, err)
		}
	}
	if n := refusedLines.Load(); n != 1 {
		t.Errorf("%d refused streams logged %d lines; want 1", tries, n)
	}
	want := []node.StreamCount{{Service: "X", Result: node.StreamAccessDenied, Count: tries}}
	waitFor(t, "the server to count every refusal", func() bool { return slices.Equal(srv.StreamCounts(), want) })
}
