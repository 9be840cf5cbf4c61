package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// tcpSessionPair connects two endpoints that trust each other over the TCP
// carrier and returns the initiator's and the responder's session.
func tcpSessionPair(t *testing.T, ctx context.Context) (sa, sb *Session) {
	t.Helper()
	ka, kb := newKey(t), newKey(t)
	a, b := tcpEndpoints(t, ka, kb, Config{Name: "tcp-test", Instance: 9})
	sa, sb = pairUp(t, ctx, b, func() (*Session, error) { return a.DialTCP(ctx, kb.PeerID(), b.TCPAddrs()[0].String()) })
	if sa.Peer() != kb.PeerID() || sb.Peer() != ka.PeerID() || sb.PeerName() != "tcp-test" || sa.PeerInstance() != 9 {
		t.Fatalf("identities: a sees %s, b sees %s %q", sa.Peer(), sb.Peer(), sb.PeerName())
	}
	return sa, sb
}

// yamuxCarriers are the carriers that run yamux over Noise records, each
// with a way to make a session pair on it and the carrier it reports.
var yamuxCarriers = []struct {
	name    string
	pair    func(*testing.T, context.Context) (*Session, *Session)
	carrier string
	conns   int // connections once the session carried streams
}{
	{"tcp", tcpSessionPair, CarrierTCP, tcpLanes},
	{"relayed", relayedSessionPair, CarrierRelayed, 1},
}

// TestTCPSession: a session on the TCP carrier, or on the same bytes over
// a relayed stream, reports its carrier, carries streams both ways
// byte-exact (more at once than one QUIC connection allows), pings, and
// ends gracefully with the close code seen on the other side.
func TestTCPSession(t *testing.T) {
	for _, c := range yamuxCarriers {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sa, sb := c.pair(t, ctx)
			if sa.Carrier() != c.carrier || sb.Carrier() != c.carrier {
				t.Fatalf("carriers %q and %q, want %q", sa.Carrier(), sb.Carrier(), c.carrier)
			}
			checkYamuxSession(t, ctx, sa, sb, c.conns)
		})
	}
}

func checkYamuxSession(t *testing.T, ctx context.Context, sa, sb *Session, conns int) {
	for _, dir := range []struct {
		name      string
		open, srv *Session
	}{{"initiator opens", sa, sb}, {"responder opens", sb, sa}} {
		t.Run(dir.name, func(t *testing.T) {
			echoServer(ctx, dir.srv)
			echoAll(t, openEchoStreams(t, ctx, dir.open, StreamsPerConn+50), 2000)
		})
	}
	big := make([]byte, 16<<20)
	rand.Read(big)
	st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	go func() { st.Write(big); st.CloseWrite() }()
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("16 MiB echo: %d bytes, %v", len(got), err)
	}
	st.Close()
	if s := sa.Stats(); s.Conns != conns || s.BytesSent < 16<<20 || s.BytesReceived < 16<<20 {
		t.Fatalf("stats %+v", s)
	}
	if rtt, err := sa.Ping(ctx); err != nil || rtt <= 0 {
		t.Fatalf("ping: %v %v", rtt, err)
	}
	sa.GoAway(ctx)
	select {
	case <-sb.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("responder did not see the end")
	}
	// After the drain both sides close with going-away; either may be first.
	var ce *CloseError
	if !errors.As(sb.Err(), &ce) || ce.Code != CodeGoingAway {
		t.Fatalf("close cause at the responder: %v", sb.Err())
	}
}

// TestTCPSessionCloseCode: a close with a code reaches the peer as that
// code, as on QUIC, on the TCP and the relayed carrier.
func TestTCPSessionCloseCode(t *testing.T) {
	for _, c := range yamuxCarriers {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sa, sb := c.pair(t, ctx)
			sa.Close(CodeRemoved)
			select {
			case <-sb.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("responder did not see the close")
			}
			var ce *CloseError
			if !errors.As(sb.Err(), &ce) || ce.Code != CodeRemoved || !ce.Remote {
				t.Fatalf("close cause at the responder: %v, want remote %s", sb.Err(), codeText(CodeRemoved))
			}
		})
	}
}

// TestTCPSessionRefused: an untrusted initiator's dial fails, and the
// responder makes no session.
func TestTCPSessionRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ka, kb := newKey(t), newKey(t)
	b, err := Listen(Config{Key: kb, Listen: []string{"127.0.0.1:0"}, ListenTCP: []string{"127.0.0.1:0"}, Trust: trustOnly(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a := newEndpoint(t, ka, trustOnly(t, kb))
	_, err = a.DialTCP(ctx, kb.PeerID(), b.TCPAddrs()[0].String())
	if !errors.Is(err, ErrHandshake) || !isRefused(err) {
		t.Fatalf("untrusted dial: %v, want ErrHandshake and a remote close with CodeRefused, as on QUIC", err)
	}
	if got := handshakeResult(err); got != HandshakeUntrusted {
		t.Fatalf("the refused TCP dial counts as %q; want %q", got, HandshakeUntrusted)
	}
	acceptNone(t, b, 200*time.Millisecond)
}

// TestTCPWindowBudget: a TCP session's streams grow their windows out of
// one budget; their initial windows do not count against it, and a stream
// that ends gives its growth back.
func TestTCPWindowBudget(t *testing.T) {
	b := &windowBudget{}
	s1, _ := b.span()
	s2, _ := b.span()
	for range 1000 {
		if err := s1.ReserveMemory(256<<10, yamuxInitialWindowPrio); err != nil {
			t.Fatalf("an initial window was refused: %v", err)
		}
	}
	if err := s1.ReserveMemory(tcpWindowBudget-1<<20, 128); err != nil {
		t.Fatal(err)
	}
	if err := s2.ReserveMemory(2<<20, 128); err == nil {
		t.Fatal("a second stream grew past the session's budget")
	}
	if err := s2.ReserveMemory(1<<20, 128); err != nil {
		t.Fatalf("growth within the budget refused: %v", err)
	}
	s1.Done()
	if err := s2.ReserveMemory(32<<20, 128); err != nil {
		t.Fatalf("the budget was not given back when a stream ended: %v", err)
	}
	if got := b.used.Load(); got != 33<<20 {
		t.Fatalf("budget in use %d, want %d", got, 33<<20)
	}
}

// TestTCPListenBothFamilies: "0.0.0.0:P" and "[::]:P" are one socket per
// family, as for UDP, not a dual-stack socket that collides with the first.
func TestTCPListenBothFamilies(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 here: %v", err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	ep, err := Listen(Config{Key: newKey(t), Listen: []string{"127.0.0.1:0"}, Trust: trustOnly(t),
		ListenTCP: []string{fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf("[::]:%d", port)}})
	if err != nil {
		t.Fatalf("TCP on both families at port %d: %v", port, err)
	}
	defer ep.Close()
	if n := len(ep.TCPAddrs()); n != 2 {
		t.Fatalf("%d TCP listeners, want 2", n)
	}
}
