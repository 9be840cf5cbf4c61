package transport

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
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
		ka, kb := newKey(t), newKey(t)
		// Shared endpoints start no goroutine on their UDP sockets, so the
		// bubble holds only what the sessions start.
		a, err := Listen(Config{Key: ka, Listen: []string{"127.0.0.1:0"}, Shared: true, Trust: trustOnly(t, kb)})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := Listen(Config{Key: kb, Listen: []string{"127.0.0.1:0"}, Shared: true, Trust: trustOnly(t, ka)})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		pa, pb := net.Pipe()
		fa := &freezable{Conn: pa}
		ctx := context.Background()
		bs := make(chan *Session, 1)
		go func() {
			info, err := b.respondTCP(ctx, pb, nil)
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
		info, err := a.initiateTCP(ctx, fa, kb.PeerID())
		if err != nil {
			t.Fatal(err)
		}
		sa, err := a.startTCPSession(ctx, info, true)
		if err != nil {
			t.Fatal(err)
		}
		sb := <-bs
		if sb == nil {
			t.FailNow()
		}
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
		time.Sleep(a.cfg.IdleTimeout - 500*time.Millisecond)
		if sa.State() != StateEstablished || sb.State() != StateEstablished {
			t.Fatalf("%v into the silence (idle timeout %v): states %v / %v; ended too early", time.Since(silent), a.cfg.IdleTimeout, sa.State(), sb.State())
		}
		for _, s := range []*Session{sa, sb} {
			select {
			case <-s.Done():
			case <-time.After(a.cfg.IdleTimeout + a.cfg.KeepAlive + time.Second):
				t.Fatalf("the session still runs %v into the silence", time.Since(silent))
			}
		}
		t.Logf("both sides ended the silent session %v after it went quiet (idle timeout %v)", time.Since(silent), a.cfg.IdleTimeout)
	})
}
