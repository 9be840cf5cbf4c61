package transport

import (
	"context"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quic-go/quic-go"
)

// TestRetryAboveHalfOpenThreshold: new sources must answer a Retry once
// retryThreshold connections are half-open, and no longer once they have
// completed or died; a proven source over its share is refused.
//
// It runs in a synctest bubble: a half-open connection that dies is
// uncounted by a context.AfterFunc goroutine, and synctest.Wait waits for
// exactly that instead of sleeping.
func TestRetryAboveHalfOpenThreshold(t *testing.T) {
	synctest.Test(t, testRetryAboveHalfOpenThreshold)
}

func testRetryAboveHalfOpenThreshold(t *testing.T) {
	a := &admission{sources: newSourceLimiter(1000, 1000, pendingPerSource), maxPending: 128}
	forged := &net.UDPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 1}
	var cancels []context.CancelFunc
	var conns []context.Context
	for i := range retryThreshold {
		if a.verifySource(forged) {
			t.Fatalf("Retry demanded with %d half-open connections", i)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ctx, err := a.connContext(ctx, &quic.ClientInfo{RemoteAddr: forged})
		if err != nil {
			t.Fatal(err)
		}
		cancels, conns = append(cancels, cancel), append(conns, ctx)
	}
	if !a.verifySource(forged) {
		t.Fatalf("no Retry with %d half-open connections", retryThreshold)
	}
	// One completes its handshake, one dies: below the threshold again.
	conns[0].Value(halfOpenKey{}).(*halfOpenConn).done()
	conns[0].Value(halfOpenKey{}).(*halfOpenConn).done() // and again: counted once
	cancels[1]()
	synctest.Wait() // the AfterFunc of the cancelled one has run
	if a.verifySource(forged) || a.halfOpen.Load() != retryThreshold-2 {
		t.Fatalf("half-open %d after one completed and one died; want %d and no Retry", a.halfOpen.Load(), retryThreshold-2)
	}
	for _, c := range cancels {
		c()
	}

	// Proven sources hold their share of half-open connections.
	proven := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 1}
	for i := range pendingPerSource {
		if _, err := a.connContext(context.Background(), &quic.ClientInfo{RemoteAddr: proven, AddrVerified: true}); err != nil {
			t.Fatalf("proven connection %d refused: %v", i+1, err)
		}
	}
	if _, err := a.connContext(context.Background(), &quic.ClientInfo{RemoteAddr: proven, AddrVerified: true}); err == nil {
		t.Fatal("a proven source went past its share of half-open connections")
	}
}

// TestSilentHandshakesEvicted: when the pending budget is full of
// connections that completed QUIC and said nothing, a newcomer takes the
// place of the oldest, so a real peer connects; and a silent connection is
// closed Message1Timeout after its QUIC handshake anyway.
func TestSilentHandshakesEvicted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ka, kb := newKey(t), newKey(t)
	b, err := Listen(Config{Key: kb, Listen: []string{"127.0.0.1:0"}, Trust: trustOnly(t, ka), MaxPendingHandshakes: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	go func() {
		if s, err := b.Accept(ctx); err == nil {
			defer s.Close(CodeNormal)
			<-ctx.Done()
		}
	}()
	var silent []*quic.Conn
	start := time.Now()
	for range 4 {
		conn, _ := rawConn(t, ctx, b)
		silent = append(silent, conn)
	}
	for b.adm.pendingCount() < 4 && time.Since(start) < time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	if n := b.adm.pendingCount(); n != 4 {
		t.Fatalf("%d pending, want the budget of 4", n)
	}
	a := newEndpoint(t, ka, trustOnly(t, kb))
	s, err := a.Dial(ctx, kb.PeerID(), addr(b))
	if err != nil {
		t.Fatalf("a trusted peer with the pending budget full of silent connections: %v", err)
	}
	defer s.Close(CodeNormal)
	select {
	case <-silent[0].Context().Done():
		if !isRefused(context.Cause(silent[0].Context())) {
			t.Fatalf("the oldest silent connection ended with %v, want the generic refusal", context.Cause(silent[0].Context()))
		}
	case <-time.After(time.Second):
		t.Fatal("the oldest silent connection was not evicted for the newcomer")
	}
	for _, c := range silent[1:] {
		select {
		case <-c.Context().Done():
		case <-time.After(Message1Timeout + 2*time.Second):
			t.Fatalf("a silent connection lived %v past its QUIC handshake", time.Since(start))
		}
		if !isRefused(context.Cause(c.Context())) {
			t.Fatalf("a silent connection ended with %v, want the generic refusal", context.Cause(c.Context()))
		}
	}
	if d := time.Since(start); d < Message1Timeout-100*time.Millisecond {
		t.Fatalf("silent connections closed after %v, before Message1Timeout", d)
	}
}

// TestAddressTokenSkipsRetry: a peer that demands a Retry of new sources
// (as under a handshake flood) gets one round trip less from a dialer that
// connected to it before: the dialer presents the address token it was
// given, and its Initial skips the Retry, and the Retry queue.
func TestAddressTokenSkipsRetry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ka, kb := newKey(t), newKey(t)
	a, b := tcpEndpoints(t, ka, kb, Config{})
	b.adm.halfOpen.Add(retryThreshold) // as if a flood held the half-open connections
	defer b.adm.halfOpen.Add(-retryThreshold)
	sa, sb := dialPair(t, ctx, a, b, kb)
	first := b.adm.tokenless.Load() // its first flight's Initials (one or two packets)
	if first == 0 {
		t.Fatal("the first dial was never asked for a Retry")
	}
	sa.Close(CodeNormal)
	sb.Close(CodeNormal)
	dialPair(t, ctx, a, b, kb)
	if n := b.adm.tokenless.Load() - first; n != 0 {
		t.Fatalf("the second dial sent %d Initials without a token; want none: it had the first session's", n)
	}
}
