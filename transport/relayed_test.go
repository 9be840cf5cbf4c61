package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
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
	return circuitConn{ca, testCircuit}, circuitConn{cb, testCircuit}
}

// relayedDial runs DialRelayed from a (key ka) to kb and AcceptRelayed on b
// for want at once, over a circuitPair, and returns both outcomes.
func relayedDial(t *testing.T, ctx context.Context, a, b *Endpoint, kb identity.PrivateKey, want identity.PeerID) (sa *Session, aerr error, sb *Session, berr error) {
	t.Helper()
	ca, cb := circuitPair(t)
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

// TestRelayedSession: a session over a relayed stream reports the relayed
// carrier and the circuit as its remote address, carries streams both ways
// byte-exact, pings, and ends with the close code seen on the other side.
func TestRelayedSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb := relayedSessionPair(t, ctx)
	for _, s := range []*Session{sa, sb} {
		if s.Carrier() != CarrierRelayed || s.RemoteAddr() != net.Addr(testCircuit) {
			t.Fatalf("carrier %q, remote %v; want %q over %v", s.Carrier(), s.RemoteAddr(), CarrierRelayed, testCircuit)
		}
	}
	for _, dir := range []struct {
		name      string
		open, srv *Session
	}{{"initiator opens", sa, sb}, {"responder opens", sb, sa}} {
		t.Run(dir.name, func(t *testing.T) {
			echoServer(ctx, dir.srv)
			echoAll(t, openEchoStreams(t, ctx, dir.open, 20), 5000)
		})
	}
	big := make([]byte, 4<<20)
	rand.Read(big)
	st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	go func() { st.Write(big); st.CloseWrite() }()
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("4 MiB echo: %d bytes, %v", len(got), err)
	}
	st.Close()
	if rtt, err := sa.Ping(ctx); err != nil || rtt <= 0 {
		t.Fatalf("ping: %v %v", rtt, err)
	}
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
