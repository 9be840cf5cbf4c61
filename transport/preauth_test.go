package transport

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/quic-go/quic-go"
)

// openAll opens bidirectional streams on conn until the peer's limit stops
// it, writes a byte on the last one (so that one STREAM frame carries the
// highest ID the peer allows) and returns how many it opened.
func openAll(t *testing.T, conn *quic.Conn) int {
	t.Helper()
	var last *quic.Stream
	n := 0
	for ; n < 1<<16; n++ {
		st, err := conn.OpenStream()
		if err != nil {
			if _, full := errors.AsType[*quic.StreamLimitReachedError](err); !full {
				t.Fatalf("open stream %d: %v", n, err)
			}
			break
		}
		last = st
	}
	if last != nil {
		last.Write([]byte{1})
	}
	return n
}

// TestPreAuthStreamFloodResponder: clients that complete QUIC, write a byte
// of the handshake stream and then open every stream they may, the highest
// ID included, never sending message 1, get at most StreamsPerConn streams;
// the responder accepts none of them and its memory stays bounded.
func TestPreAuthStreamFloodResponder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kb := newKey(t)
	b := newEndpoint(t, kb, trustOnly(t))
	before, goroutines := testnet.HeapInUse(), runtime.NumGoroutine()
	const conns = 16
	var opened int
	for range conns {
		conn, st := rawConn(t, ctx, b)
		st.Write([]byte{0})
		opened = openAll(t, conn) + 1 // + the handshake stream
		if opened > StreamsPerConn {
			t.Fatalf("a stranger opened %d streams on one connection; the limit is %d", opened, StreamsPerConn)
		}
	}
	time.Sleep(200 * time.Millisecond) // the frames arrive
	grown := int64(testnet.HeapInUse()) - int64(before)
	t.Logf("%d unauthenticated connections, %d streams each: heap +%d KiB (both ends, this process), goroutines %d → %d",
		conns, opened, grown>>10, goroutines, runtime.NumGoroutine())
	// Both ends live in this process: 16 connections and their streams on
	// each side. Before streams were capped one connection cost ~98 MiB.
	if grown > conns*1<<20 {
		t.Fatalf("heap grew by %d KiB for %d connections; want under %d KiB", grown>>10, conns, conns*1<<10)
	}
	acceptNone(t, b, 100*time.Millisecond)
}

// TestPreAuthStreamFloodInitiator: a fake responder that opens every stream
// it may toward a dialing node before message 2 gets at most StreamsPerConn
// of them, and the dial fails without a session.
func TestPreAuthStreamFloodInitiator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ka, kb := newKey(t), newKey(t)
	a, err := Listen(Config{Key: ka, Listen: []string{"127.0.0.1:0"}, Trust: trustOnly(t, kb), HandshakeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cert, err := throwawayCert()
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: listenLoopback(t)}
	defer tr.Close()
	ln, err := tr.Listen(serverTLS(cert), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	opened := make(chan int, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			opened <- -1
			return
		}
		opened <- openAll(t, conn)
	}()
	_, err = a.Dial(ctx, kb.PeerID(), tr.Conn.LocalAddr().(*net.UDPAddr).String())
	if err == nil {
		t.Fatal("dial to a fake responder made a session")
	}
	if n := <-opened; n < 1 || n > StreamsPerConn {
		t.Fatalf("the fake responder opened %d streams toward the dialer; want 1 to %d", n, StreamsPerConn)
	}
}
