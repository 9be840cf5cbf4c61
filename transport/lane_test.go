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
			srv := echoServer(ctx, dir.srv)
			n := 3*StreamsPerConn + 10
			streams := make([]*Stream, n)
			for i := range streams {
				st, err := dir.open.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, 5*time.Second)
				if err != nil {
					t.Fatalf("stream %d: %v", i, err)
				}
				streams[i] = st // all held open at once
			}
			if c := dir.open.Stats().Conns; c < 4 {
				t.Fatalf("%d streams open on %d connections; want at least 4 lanes", n, c)
			}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i, st := range streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := bytes.Repeat([]byte(fmt.Sprintf("stream %d;", i)), 1000)
					go func() { st.Write(msg); st.CloseWrite() }()
					got, err := io.ReadAll(st)
					if err != nil || sha256.Sum256(got) != sha256.Sum256(msg) {
						errs <- fmt.Errorf("stream %d: %d of %d bytes, err %v", i, len(got), len(msg), err)
					}
					st.Close()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			_ = srv
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
	sa, err := a.Dial(ctx, kb.PeerID(), addr(b))
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close(CodeNormal)
	sb, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(CodeNormal)

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
	var held []*Stream
	for range StreamsPerConn + 1 {
		st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, st)
	}
	if n := sa.Stats().Conns; n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	extra := sa.lanesNow()[1]
	extra.conn.CloseWithError(CodeNormal, "")
	deadline := time.Now().Add(5 * time.Second)
	for (sa.Stats().Conns != 1 || sb.Stats().Conns != 1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sa.Stats().Conns != 1 || sb.Stats().Conns != 1 {
		t.Fatalf("the dead lane is still counted: %d and %d connections", sa.Stats().Conns, sb.Stats().Conns)
	}
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
