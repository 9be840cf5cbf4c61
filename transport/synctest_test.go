package transport

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// freezable is one end of a pipe that can go silent both ways, as a peer
// does when it crashes or its path dies without a word: after freeze its
// writes vanish and what arrives is never delivered.
type freezable struct {
	net.Conn
	frozen atomic.Bool
}

func (c *freezable) Write(p []byte) (int, error) {
	if c.frozen.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *freezable) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if !c.frozen.Load() || err != nil {
			return n, err
		}
	}
}

// TestKeepaliveAndIdleTimeout runs a TCP-carrier session over an in-memory
// pipe in a synctest bubble, where time is virtual: an idle session stays
// up for an hour on its control pings alone and still carries a stream;
// when the path goes silent both sides end it after IdleTimeout, and not
// before. No real time passes.
func TestKeepaliveAndIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sa, sb, fa := pipeSessions(t)
		ctx := context.Background()
		go func() { // b echoes one stream
			st, err := sb.AcceptStream(ctx)
			if err != nil {
				return
			}
			if _, err := st.ReadRequest(time.Second); err != nil {
				return
			}
			st.Respond(StatusOK)
			io.Copy(st, st)
			st.CloseWrite()
		}()

		time.Sleep(time.Hour)
		if sa.State() != StateEstablished || sb.State() != StateEstablished {
			t.Fatalf("after an idle hour: states %v / %v; keepalives should hold the session", sa.State(), sb.State())
		}
		st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, time.Second)
		if err != nil {
			t.Fatalf("a stream after an idle hour: %v", err)
		}
		msg := []byte("still here after an hour")
		st.Write(msg)
		st.CloseWrite()
		got, err := io.ReadAll(st)
		if err != nil || string(got) != string(msg) {
			t.Fatalf("echo after an idle hour: %q, %v", got, err)
		}

		fa.frozen.Store(true)
		silent := time.Now()
		time.Sleep(sa.ep.cfg.IdleTimeout - 500*time.Millisecond)
		if sa.State() != StateEstablished || sb.State() != StateEstablished {
			t.Fatalf("%v into the silence (idle timeout %v): states %v / %v; ended too early", time.Since(silent), sa.ep.cfg.IdleTimeout, sa.State(), sb.State())
		}
		for _, s := range []*Session{sa, sb} {
			select {
			case <-s.Done():
			case <-time.After(sa.ep.cfg.IdleTimeout + sa.ep.cfg.KeepAlive + time.Second):
				t.Fatalf("the session still runs %v into the silence", time.Since(silent))
			}
		}
		t.Logf("both sides ended the silent session %v after it went quiet (idle timeout %v)", time.Since(silent), sa.ep.cfg.IdleTimeout)
	})
}

// pipeSessions connects two fresh endpoints' TCP-carrier sessions over an
// in-memory pipe; a's end of it can be frozen. Run it inside a synctest
// bubble: shared endpoints start no goroutine on their UDP sockets, so the
// bubble holds only what the sessions start, and its clock is theirs.
func pipeSessions(t *testing.T) (sa, sb *Session, fa *freezable) {
	t.Helper()
	ka, kb := newKey(t), newKey(t)
	a, err := Listen(Config{Key: ka, Listen: []string{"127.0.0.1:0"}, Shared: true, Trust: trustOnly(t, kb)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := Listen(Config{Key: kb, Listen: []string{"127.0.0.1:0"}, Shared: true, Trust: trustOnly(t, ka)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	pa, pb := net.Pipe()
	fa = &freezable{Conn: pa}
	ctx := context.Background()
	bs := make(chan *Session, 1)
	go func() {
		info, err := b.respondTCP(ctx, pb, nil, identity.PeerID{}, CarrierTCP)
		if err != nil {
			t.Errorf("responder: %v", err)
			bs <- nil
			return
		}
		s, err := b.startTCPSession(ctx, info, false)
		if err != nil {
			t.Errorf("responder session: %v", err)
		}
		bs <- s
	}()
	info, err := a.initiateTCP(ctx, fa, kb.PeerID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sa, err = a.startTCPSession(ctx, info, true); err != nil {
		t.Fatal(err)
	}
	if sb = <-bs; sb == nil {
		t.FailNow()
	}
	return sa, sb, fa
}

// TestGoAwayDrains: a going away in the middle of a slow download lets it
// finish, byte-exact, refuses new streams meanwhile, and closes both sides
// once the stream is done; a stream that never ends is cut when GoAway's
// context ends. Virtual time (synctest): the download takes 5 s, the
// bound 30 s, and neither is waited for.
func TestGoAwayDrains(t *testing.T) {
	const chunk, chunks, every = 64 << 10, 50, 100 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		sa, sb, _ := pipeSessions(t)
		ctx := context.Background()
		go func() { // b: "slow" sends chunks every 100 ms; "stuck" never answers a byte
			for {
				st, err := sb.AcceptStream(ctx)
				if err != nil {
					return
				}
				req, err := st.ReadRequest(time.Second)
				if err != nil {
					return
				}
				st.Respond(StatusOK)
				if req.Service == "stuck" {
					continue
				}
				go func() {
					for i := range chunks {
						st.Write(bytes.Repeat([]byte{byte(i)}, chunk))
						time.Sleep(every)
					}
					st.CloseWrite()
					io.Copy(io.Discard, st) // to the client's EOF, as a proxied connection does
					st.Close()
				}()
			}
		}()
		st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "slow"}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, chunk)
		if _, err := io.ReadFull(st, first); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		gone := make(chan struct{})
		go func() { sa.GoAway(ctx); close(gone) }()
		synctest.Wait()
		if _, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "slow"}, time.Second); err == nil {
			t.Fatal("a new stream opened on a session going away")
		}
		rest, err := io.ReadAll(st)
		if err != nil || len(rest) != (chunks-1)*chunk {
			t.Fatalf("the download across the going-away: %d more bytes, %v; want %d", len(rest), err, (chunks-1)*chunk)
		}
		for i := range chunks - 1 {
			if rest[i*chunk] != byte(i+1) || rest[(i+1)*chunk-1] != byte(i+1) {
				t.Fatalf("chunk %d differs", i+1)
			}
		}
		st.Close()
		<-gone
		if took := time.Since(start); took < (chunks-2)*every {
			t.Fatalf("GoAway returned after %v, before the download could end", took)
		}
		<-sb.Done()
		if sa.State() != StateClosed || sb.State() != StateClosed {
			t.Fatalf("after the drain: states %v / %v", sa.State(), sb.State())
		}

		// A stream that never ends holds the drain until GoAway's bound.
		sa, sb, _ = pipeSessions(t)
		go func() {
			st, err := sb.AcceptStream(ctx)
			if err == nil {
				st.ReadRequest(time.Second)
				st.Respond(StatusOK)
			}
		}()
		stuck, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "stuck"}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		bound, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		start = time.Now()
		sa.GoAway(bound)
		if took := time.Since(start); took != 30*time.Second {
			t.Fatalf("GoAway with a stream that never ends returned after %v; want its 30 s bound", took)
		}
		if _, err := stuck.Read(make([]byte, 1)); err == nil || err == io.EOF {
			t.Fatalf("the stuck stream after the forced close: %v; want an error, not EOF", err)
		}
	})
}

// TestHeldAnswerRace: the service writes its first payload at the very
// moment its held OK answer is flushed by the timer (heldAnswerDelay after
// Respond; synctest wakes both together), 300 times. The opener must read
// the answer first and then exactly the payload: payload written ahead of
// the answer reads as a malformed answer.
func TestHeldAnswerRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sa, sb, _ := pipeSessions(t)
		ctx := context.Background()
		go func() {
			for {
				st, err := sb.AcceptStream(ctx)
				if err != nil {
					return
				}
				go func() {
					if _, err := st.ReadRequest(time.Second); err != nil {
						return
					}
					st.Respond(StatusOK) // held: the request is pipelined
					time.Sleep(heldAnswerDelay)
					st.Write([]byte("payload"))
					st.CloseWrite()
					io.Copy(io.Discard, st)
					st.Close()
				}()
			}
		}()
		for i := range 300 {
			st, err := sa.OpenStreamEarly(ctx, Request{Kind: KindTCP, Service: "s"}, time.Second, nil)
			if err != nil {
				t.Fatal(err)
			}
			st.CloseWrite()
			got, err := io.ReadAll(st)
			if err != nil || string(got) != "payload" {
				t.Fatalf("stream %d: read %q, %v; want the answer, then \"payload\"", i, got, err)
			}
			st.Close()
		}
		sa.Close(CodeNormal)
		<-sb.Done()
		synctest.Wait()
	})
}
