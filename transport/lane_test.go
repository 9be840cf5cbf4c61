package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// echoServer answers every stream of s with an echo until s ends.
func echoServer(ctx context.Context, s *Session) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := st.ReadRequest(time.Second); err != nil {
					st.Abort()
					return
				}
				st.Respond(StatusOK)
				io.Copy(st, st)
				st.Close()
			}()
		}
	}()
	return &wg
}

// echoAll sends a different message of reps repetitions on each stream at
// once, half-closes, and checks each echo by SHA-256.
func echoAll(t *testing.T, streams []*Stream, reps int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(streams))
	for i, st := range streams {
		wg.Go(func() {
			msg := bytes.Repeat([]byte(fmt.Sprintf("stream %d;", i)), reps)
			go func() { st.Write(msg); st.CloseWrite() }()
			got, err := io.ReadAll(st)
			if err != nil || sha256.Sum256(got) != sha256.Sum256(msg) {
				errs <- fmt.Errorf("stream %d: %d of %d bytes, err %v", i, len(got), len(msg), err)
			}
			st.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// openEchoStreams opens n streams to "echo" on s, all held open at once.
func openEchoStreams(t *testing.T, ctx context.Context, s *Session, n int) []*Stream {
	t.Helper()
	streams := make([]*Stream, n)
	for i := range streams {
		st, err := s.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, 5*time.Second)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		streams[i] = st
	}
	return streams
}

// dialPair dials b from a over QUIC and returns both ends of the session,
// closed at cleanup.
func dialPair(t *testing.T, ctx context.Context, a, b *Endpoint, bKey identity.PrivateKey) (sa, sb *Session) {
	t.Helper()
	return pairUp(t, ctx, b, func() (*Session, error) { return a.Dial(ctx, bKey.PeerID(), addr(b)) })
}

// pairUp runs dial, which reaches b, and returns the session it made and
// the one b accepted, both closed at cleanup.
func pairUp(t *testing.T, ctx context.Context, b *Endpoint, dial func() (*Session, error)) (sa, sb *Session) {
	t.Helper()
	sa, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Close(CodeNormal) })
	sb, err = b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(CodeNormal) })
	return sa, sb
}

// TestLanesCarryManyStreams: more concurrent streams than one connection
// allows open on extra lanes, from either side, and every byte arrives; a
// graceful end then waits for streams on every lane.
func TestLanesCarryManyStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb, _, _ := sessionPair(t, ctx)
	for _, dir := range []struct {
		name      string
		open, srv *Session
	}{{"initiator opens", sa, sb}, {"responder opens", sb, sa}} {
		t.Run(dir.name, func(t *testing.T) {
			echoServer(ctx, dir.srv)
			streams := openEchoStreams(t, ctx, dir.open, 3*StreamsPerConn+10)
			if c := dir.open.Stats().Conns; c < 4 {
				t.Fatalf("%d streams open on %d connections; want at least 4 lanes", len(streams), c)
			}
			echoAll(t, streams, 1000)
		})
	}
	if sa.Stats().Conns != sb.Stats().Conns {
		t.Fatalf("the two ends count %d and %d connections", sa.Stats().Conns, sb.Stats().Conns)
	}

	// A stream held open on the last lane keeps a graceful end waiting
	// until it finishes.
	var last *Stream
	for range 3 * StreamsPerConn {
		st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if last != nil {
			last.Close()
		}
		last = st
	}
	done := make(chan struct{})
	go func() { sa.GoAway(ctx); close(done) }()
	select {
	case <-done:
		t.Fatal("the session closed with a stream still open")
	case <-time.After(300 * time.Millisecond):
	}
	msg := []byte("last words")
	last.Write(msg)
	last.CloseWrite()
	got, err := io.ReadAll(last)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the stream during the drain: %q, %v", got, err)
	}
	last.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not end after the last stream")
	}
}

// TestLaneRefusedWithoutSession: a connection that asks to join a session
// the responder does not have, or has with another peer, is refused like
// any failed handshake.
func TestLaneRefusedWithoutSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ka, kb, kc := newKey(t), newKey(t), newKey(t)
	a := newEndpoint(t, ka, trustOnly(t, kb))
	b := newEndpoint(t, kb, trustOnly(t, ka, kc))
	c := newEndpoint(t, kc, trustOnly(t, kb))
	sa, sb := dialPair(t, ctx, a, b, kb)

	// c is trusted by b but presents a's lane key.
	if _, _, _, err := c.dialConn(ctx, kb.PeerID(), b.Addrs()[0], sa.laneKey[:]); err == nil || !isRefused(err) {
		t.Fatalf("lane with another peer's session key: %v, want refused", err)
	}
	// a with a key no session has.
	if _, _, _, err := a.dialConn(ctx, kb.PeerID(), b.Addrs()[0], make([]byte, 16)); err == nil || !isRefused(err) {
		t.Fatalf("lane with an unknown key: %v, want refused", err)
	}
	if n := sb.Stats().Conns; n != 1 {
		t.Fatalf("responder's session has %d connections, want 1", n)
	}
	acceptNone(t, b, 200*time.Millisecond)
}

// TestLaneEndsAlone: an extra lane that dies takes only its own streams;
// the session goes on and opens streams on what is left.
func TestLaneEndsAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sa, sb, _, _ := sessionPair(t, ctx)
	echoServer(ctx, sb)
	held := openEchoStreams(t, ctx, sa, StreamsPerConn+1)
	if n := sa.Stats().Conns; n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	extra := sa.lanesNow()[1]
	extra.conn.CloseWithError(CodeNormal, "")
	waitConns(t, sa, sb, 1) // the dead lane is no longer counted
	if sa.State() != StateEstablished || sa.Err() != nil {
		t.Fatalf("the session ended with its extra lane: %v", sa.Err())
	}
	for _, st := range held[:8] {
		st.Close()
	}
	st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, 5*time.Second)
	if err != nil {
		t.Fatalf("a stream after the lane died: %v", err)
	}
	msg := []byte("still here")
	st.Write(msg)
	st.CloseWrite()
	if got, err := io.ReadAll(st); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo after the lane died: %q, %v", got, err)
	}
	st.Close()
	for _, st := range held[8:] {
		st.Close()
	}
}

// TestIdleLanesRetired: extra lanes that carried nothing for laneIdle are
// closed by the side that dialed them, after both sides agreed; a lane with
// a stream still open stays; new streams then grow the session again.
func TestIdleLanesRetired(t *testing.T) {
	old := laneIdle.get()
	laneIdle.set(50 * time.Millisecond)
	t.Cleanup(func() { laneIdle.set(old) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ka, kb := newKey(t), newKey(t)
	listen := func(k identity.PrivateKey, trust func([32]byte) (identity.PeerID, bool)) *Endpoint {
		ep, err := Listen(Config{Key: k, Listen: []string{"127.0.0.1:0"}, Trust: trust, KeepAlive: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	a, b := listen(ka, trustOnly(t, kb)), listen(kb, trustOnly(t, ka))
	sa, sb := dialPair(t, ctx, a, b, kb)
	echoServer(ctx, sb)

	open := func(n int) []*Stream {
		var out []*Stream
		for range n {
			st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st)
		}
		return out
	}
	conns := func(want int) {
		t.Helper()
		waitConns(t, sa, sb, want)
	}
	streams := open(3*StreamsPerConn + 1) // 4 lanes
	conns(4)
	for _, st := range streams[:len(streams)-1] {
		st.Close()
	}
	last := streams[len(streams)-1] // on the fourth lane
	conns(2)                        // the others went; the lane with a stream stays
	msg := []byte("still carried")
	last.Write(msg)
	last.CloseWrite()
	if got, err := io.ReadAll(last); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the stream on the kept lane: %q, %v", got, err)
	}
	last.Close()
	conns(1)
	if sa.Err() != nil || sb.Err() != nil {
		t.Fatalf("the session ended: %v, %v", sa.Err(), sb.Err())
	}
	for _, st := range open(2*StreamsPerConn + 1) {
		st.Write([]byte{1})
		st.CloseWrite()
		if got, err := io.ReadAll(st); err != nil || len(got) != 1 {
			t.Fatalf("echo after the lanes were retired: %v, %v", got, err)
		}
		st.Close()
	}
}

// TestAcceptStreamEndsWithSession: AcceptStream returns an error once the
// session ends, whether it waits on the first connection itself or on the
// lanes' acceptors, and does not spin.
func TestAcceptStreamEndsWithSession(t *testing.T) {
	for _, lanes := range []bool{false, true} {
		t.Run(fmt.Sprintf("lanes=%v", lanes), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sa, sb, _, _ := sessionPair(t, ctx)
			if lanes {
				srv := echoServer(ctx, sb)
				for _, st := range openEchoStreams(t, ctx, sa, StreamsPerConn+1) {
					st.Close()
				}
				sb.Close(CodeNormal)
				srv.Wait()
				return
			}
			errc := make(chan error, 1)
			go func() { _, err := sb.AcceptStream(ctx); errc <- err }()
			time.Sleep(50 * time.Millisecond)
			sa.Close(CodeNormal)
			select {
			case err := <-errc:
				if err == nil || ctx.Err() != nil {
					t.Fatalf("AcceptStream after the session ended: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("AcceptStream did not return after the session ended")
			}
		})
	}
}

// TestGoneLanesBounded: a session remembers the last maxGone lanes that
// ended, however many a peer adds and drops.
func TestGoneLanesBounded(t *testing.T) {
	var s Session
	for id := uint64(1); id <= 10*maxGone; id++ {
		s.markGone(id)
		s.markGone(id) // twice: counted once
	}
	if len(s.gone) != maxGone || len(s.goneOrder) != maxGone {
		t.Fatalf("after %d lanes ended: %d remembered (%d in order); want %d", 10*maxGone, len(s.gone), len(s.goneOrder), maxGone)
	}
	if !s.gone[10*maxGone] || s.gone[10*maxGone-maxGone] {
		t.Fatal("the set holds other than the last maxGone ids")
	}
}
