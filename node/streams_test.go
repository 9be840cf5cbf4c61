package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/p2pd/p2pd/node"
	"go.uber.org/goleak"
)

// serverAndClient starts S with an echo service "echo" that A may use, and
// A with S's address.
func serverAndClient(t *testing.T) (srv, a *testNode, echo *echoBackend) {
	echo = newEchoBackend(t)
	a = newNode(t, node.Config{Name: "A"})
	srv = startNode(t, node.Config{Name: "S", Peers: []node.Peer{a.peer("A", false)},
		Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}})
	if err := a.Apply([]node.Peer{srv.peer("S", true)}, nil); err != nil {
		t.Fatal(err)
	}
	a.run()
	return srv, a, echo
}

// TestManyStreams is RELIABILITY L3: 2000 small request/response exchanges
// over one session, 200 at a time, all intact.
func TestManyStreams(t *testing.T) {
	const workers, each, size = 200, 10, 32
	srv, a, echo := serverAndClient(t)
	// A generous bound: under -race on a loaded machine this is slow.
	ctx, cancel := context.WithTimeout(context.Background(), 4*failBound)
	defer cancel()
	if _, _, err := a.Ping(ctx, "S"); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := dialEcho(ctx, a, "S", "echo", randomBytes(size)); err != nil {
					t.Errorf("worker %d request %d: %v", w, i, err)
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if got := ok.Load(); got != workers*each {
		t.Fatalf("%d of %d exchanges intact", got, workers*each)
	}
	if ss := a.Sessions(); len(ss) != 1 {
		t.Errorf("A has %d sessions, want the one: %+v", len(ss), ss)
	}
	if got := echo.Accepted(); got != workers*each {
		t.Errorf("backend accepted %d connections, want %d", got, workers*each)
	}
	waitFor(t, "S to see every stream end", func() bool {
		st := srv.Services()
		return len(st) == 1 && st[0].Active == 0
	})
	if st := srv.Services()[0]; st.Total != workers*each {
		t.Errorf("service counted %d streams, want %d", st.Total, workers*each)
	}
}

func TestPing(t *testing.T) {
	srv, a, _ := serverAndClient(t)
	ctx := testCtx(t)
	for _, name := range []string{"S", srv.ID().String()} {
		rtt, addr, err := a.Ping(ctx, name)
		if err != nil {
			t.Errorf("Ping(%q): %v", name, err)
			continue
		}
		if addr != srv.addr || rtt <= 0 {
			t.Errorf("Ping(%q) = %v from %s, want a positive RTT from %s", name, rtt, addr, srv.addr)
		}
	}
	stranger := newKey(t).PeerID().String()
	for _, name := range []string{"nobody", stranger, a.ID().String()} {
		if _, _, err := a.Ping(ctx, name); !errors.Is(err, node.ErrUnknownPeer) {
			t.Errorf("Ping(%q): err = %v, want %v", name, err, node.ErrUnknownPeer)
		}
		if _, err := a.DialService(ctx, name, "echo"); !errors.Is(err, node.ErrUnknownPeer) {
			t.Errorf("DialService(%q): err = %v, want %v", name, err, node.ErrUnknownPeer)
		}
	}
}

// TestDrain cancels S's Run while A's stream through it is half done. The
// stream finishes byte-exact during the drain, Run returns nil, and every
// goroutine the test started is gone.
func TestDrain(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { // runs after every other cleanup of the test
		if !t.Failed() {
			goleak.VerifyNone(t, before)
		}
	})
	srv, a, _ := serverAndClient(t)
	ctx := testCtx(t)
	c, err := a.DialService(ctx, "S", "echo")
	if err != nil {
		t.Fatal(err)
	}
	bound(c, failBound)
	data := randomBytes(1 << 20)
	var got []byte
	var rerr error
	var reads sync.WaitGroup
	reads.Go(func() { got, rerr = io.ReadAll(c) })
	if _, err := c.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}

	srv.cancel()
	if _, err := c.Write(data[len(data)/2:]); err != nil {
		t.Fatalf("write during the drain: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reads.Wait()
	if rerr != nil || !bytes.Equal(got, data) {
		t.Errorf("stream across the drain: read %d of %d bytes (equal: %v), then %v; want all of it and EOF",
			len(got), len(data), bytes.Equal(got, data), rerr)
	}
	c.Close()
	srv.stop() // fails the test if Run does not return nil
	a.stop()
}

// TestDrainForcesStragglers leaves a stream open across a stop: Run still
// returns (after the drain timeout) and the stream is reset, not ended cleanly.
func TestDrainForcesStragglers(t *testing.T) {
	srv, a, _ := serverAndClient(t)
	c, err := a.DialService(testCtx(t), "S", "echo")
	if err != nil {
		t.Fatal(err)
	}
	bound(c, failBound)
	if _, err := c.Write([]byte("hold")); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	if _, err := io.ReadAll(c); isEOFOrNil(err) {
		t.Errorf("straggler stream ended with %v after the forced stop; want a reset", err)
	}
	c.Abort()
}
