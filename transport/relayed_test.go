package transport

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// circuitConn is one end of a loopback TCP connection that stands for a
// relayed libp2p stream: its remote address is the circuit.
type circuitConn struct {
	*net.TCPConn
	remote RelayAddr
}

func (c circuitConn) RemoteAddr() net.Addr { return c.remote }

var testCircuit = RelayAddr{Relay: "12D3KooWRelay", Circuit: "/ip4/127.0.0.1/udp/1/quic-v1/p2p/12D3KooWRelay/p2p-circuit"}

// circuitPair returns the two ends of a loopback TCP connection as
// circuitConns.
func circuitPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	return circuitPairAt(t, testCircuit)
}

// circuitPairAt is circuitPair with remote as both ends' remote address.
func circuitPairAt(t *testing.T, remote RelayAddr) (a, b net.Conn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ca, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return circuitConn{ca, remote}, circuitConn{cb, remote}
}

// relayedDial runs DialRelayed from a (key ka) to kb and AcceptRelayed on b
// for want at once, over a circuitPair, and returns both outcomes.
func relayedDial(t *testing.T, ctx context.Context, a, b *Endpoint, kb identity.PrivateKey, want identity.PeerID) (sa *Session, aerr error, sb *Session, berr error) {
	t.Helper()
	return relayedDialAt(t, ctx, a, b, kb, want, testCircuit)
}

// relayedDialAt is relayedDial over a stream whose remote address is remote.
func relayedDialAt(t *testing.T, ctx context.Context, a, b *Endpoint, kb identity.PrivateKey, want identity.PeerID, remote RelayAddr) (sa *Session, aerr error, sb *Session, berr error) {
	t.Helper()
	ca, cb := circuitPairAt(t, remote)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sb, berr = b.AcceptRelayed(ctx, cb, want)
	}()
	sa, aerr = a.DialRelayed(ctx, ca, kb.PeerID())
	<-done
	for _, s := range []*Session{sa, sb} {
		if s != nil {
			t.Cleanup(func() { s.Close(CodeNormal) })
		}
	}
	return sa, aerr, sb, berr
}

// TestLibp2pDirectCarrier: a session on a libp2p stream whose connection is
// direct (a RelayAddr with no relay) reports CarrierLibp2p at both ends,
// carries streams, and adds no lanes.
func TestLibp2pDirectCarrier(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ka, kb := newKey(t), newKey(t)
	a, b := newEndpoint(t, ka, trustOnly(t, kb)), newEndpoint(t, kb, trustOnly(t, ka))
	direct := RelayAddr{Circuit: "/ip4/127.0.0.1/udp/4001/quic-v1/p2p/" + kb.PeerID().String()}
	sa, aerr, sb, berr := relayedDialAt(t, ctx, a, b, kb, ka.PeerID(), direct)
	if aerr != nil || berr != nil {
		t.Fatalf("dial %v, accept %v", aerr, berr)
	}
	if sa.Carrier() != CarrierLibp2p || sb.Carrier() != CarrierLibp2p {
		t.Fatalf("carriers %q and %q; want %q", sa.Carrier(), sb.Carrier(), CarrierLibp2p)
	}
	echoServer(ctx, sb)
	echoAll(t, openEchoStreams(t, ctx, sa, 4), 100)
	time.Sleep(100 * time.Millisecond)
	if n := sa.Stats().Conns; n != 1 {
		t.Fatalf("a session on a libp2p stream has %d connections; want 1", n)
	}
}

// relayedSessionPair returns the two ends of a relayed session between two
// endpoints that trust each other.
func relayedSessionPair(t *testing.T, ctx context.Context) (sa, sb *Session) {
	t.Helper()
	ka, kb := newKey(t), newKey(t)
	a, b := newEndpoint(t, ka, trustOnly(t, kb)), newEndpoint(t, kb, trustOnly(t, ka))
	sa, aerr, sb, berr := relayedDial(t, ctx, a, b, kb, ka.PeerID())
	if aerr != nil || berr != nil {
		t.Fatalf("relayed session: dial %v, accept %v", aerr, berr)
	}
	if sa.Peer() != kb.PeerID() || sb.Peer() != ka.PeerID() || sb.PeerName() != "test" {
		t.Fatalf("identities: a sees %s, b sees %s %q", sa.Peer(), sb.Peer(), sb.PeerName())
	}
	return sa, sb
}

// TestRelayedAddr: both ends of a relayed session give the circuit as
// the remote address (TestTCPSession runs the session itself).
func TestRelayedAddr(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, sb := relayedSessionPair(t, ctx)
	for _, s := range []*Session{sa, sb} {
		if s.RemoteAddr() != net.Addr(testCircuit) {
			t.Fatalf("remote %v; want the circuit %v", s.RemoteAddr(), testCircuit)
		}
	}
}

// TestRelayedRefused: the responder takes a relayed handshake only from
// the peer libp2p authenticated (want) and only from a trusted key; either
// refusal leaves the initiator with a failed dial and no session on
// either side.
func TestRelayedRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ka, kb, kc := newKey(t), newKey(t), newKey(t)
	a := newEndpoint(t, ka, trustOnly(t, kb))
	t.Run("wrong peer", func(t *testing.T) {
		// b trusts a and c; libp2p says the stream is c's, Noise says a.
		b := newEndpoint(t, kb, trustOnly(t, ka, kc))
		sa, aerr, sb, berr := relayedDial(t, ctx, a, b, kb, kc.PeerID())
		if sa != nil || sb != nil || !errors.Is(berr, errWrongPeer) || !errors.Is(aerr, ErrHandshake) {
			t.Fatalf("dial: %v %v; accept: %v %v; want the accept refused as %v", sa, aerr, sb, berr, errWrongPeer)
		}
	})
	t.Run("untrusted key", func(t *testing.T) {
		b := newEndpoint(t, kb, trustOnly(t, kc))
		sa, aerr, sb, berr := relayedDial(t, ctx, a, b, kb, ka.PeerID())
		if sa != nil || sb != nil || !errors.Is(berr, ErrUntrusted) || !errors.Is(aerr, ErrHandshake) {
			t.Fatalf("dial: %v %v; accept: %v %v; want the accept refused as %v", sa, aerr, sb, berr, ErrUntrusted)
		}
	})
}

// TestRelayedPendingBudget: inbound relayed handshakes share the pending
// budget of all inbound handshakes: a silent one is closed for a newcomer
// when the budget is full, and the newcomer's handshake completes.
func TestRelayedPendingBudget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ka, kb := newKey(t), newKey(t)
	a := newEndpoint(t, ka, trustOnly(t, kb))
	b, err := Listen(Config{Key: kb, Listen: []string{"127.0.0.1:0"}, Trust: trustOnly(t, ka), MaxPendingHandshakes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	silent, far := circuitPair(t)
	evicted := make(chan error, 1)
	go func() {
		_, err := b.AcceptRelayed(ctx, far, ka.PeerID())
		evicted <- err
	}()
	waitPending(t, b, 1)
	sa, aerr, sb, berr := relayedDial(t, ctx, a, b, kb, ka.PeerID())
	if aerr != nil || berr != nil || sa == nil || sb == nil {
		t.Fatalf("the newcomer: dial %v, accept %v", aerr, berr)
	}
	// Evicted, its stream closed under it: not a session, and not the
	// end of its Message1Timeout.
	if err := <-evicted; err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the silent relayed handshake ended with %v; want it evicted for the newcomer", err)
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the silent initiator read %d bytes, %v; want its stream closed with nothing sent", n, err)
	}
}

// waitPending waits until ep counts n pending handshakes.
func waitPending(t *testing.T, ep *Endpoint, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ep.adm.pendingCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d pending handshakes, want %d", ep.adm.pendingCount(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
