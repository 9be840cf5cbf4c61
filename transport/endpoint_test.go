package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/handshake"
	"github.com/p2pd/p2pd/identity"
	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newKey(t testing.TB) identity.PrivateKey {
	t.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// trustOnly returns a Trust function that accepts exactly keys.
func trustOnly(t testing.TB, keys ...identity.PrivateKey) func([32]byte) (identity.PeerID, bool) {
	m := map[[32]byte]identity.PeerID{}
	for _, k := range keys {
		nk, err := k.Public().NoisePublic()
		if err != nil {
			t.Fatal(err)
		}
		m[nk] = k.PeerID()
	}
	return func(s [32]byte) (identity.PeerID, bool) { id, ok := m[s]; return id, ok }
}

func newEndpoint(t testing.TB, key identity.PrivateKey, trust func([32]byte) (identity.PeerID, bool)) *Endpoint {
	t.Helper()
	ep, err := Listen(Config{Key: key, Listen: []string{"127.0.0.1:0"}, Name: "test", Instance: 7, Trust: trust, HandshakeTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

func addr(ep *Endpoint) string { return ep.Addrs()[0].String() }

// acceptNone asserts that ep completes no inbound session within d.
func acceptNone(t *testing.T, ep *Endpoint, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if s, err := ep.Accept(ctx); err == nil {
		s.Close(CodeNormal)
		t.Fatalf("responder established a session with %s; it must not", s.Peer())
	}
}

func isRefused(err error) bool {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		return CloseCode(ae.ErrorCode) == CodeRefused && ae.Remote
	}
	var ce *CloseError
	return errors.As(err, &ce) && ce.Code == CodeRefused && ce.Remote
}

// sessionPair connects two endpoints that trust each other and returns the
// initiator's and the responder's session, closed at cleanup.
func sessionPair(t *testing.T, ctx context.Context) (sa, sb *Session, ka, kb identity.PrivateKey) {
	t.Helper()
	ka, kb = newKey(t), newKey(t)
	a := newEndpoint(t, ka, trustOnly(t, kb))
	b := newEndpoint(t, kb, trustOnly(t, ka))
	sa, sb = dialPair(t, ctx, a, b, kb)
	return sa, sb, ka, kb
}

func TestSessionStreamsAndPing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, sb, ka, kb := sessionPair(t, ctx)
	if sb.Peer() != ka.PeerID() || sa.Peer() != kb.PeerID() || !sa.Initiator() || sb.Initiator() {
		t.Fatalf("identities: a sees %s, b sees %s", sa.Peer(), sb.Peer())
	}
	if sa.PeerInstance() != 7 || sb.PeerName() != "test" {
		t.Fatalf("payload not carried: instance %d name %q", sa.PeerInstance(), sb.PeerName())
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2; i++ {
			st, err := sb.AcceptStream(ctx)
			if err != nil {
				return
			}
			req, err := st.ReadRequest(time.Second)
			if err != nil || req.Service != "echo" {
				st.Respond(StatusUnknownService)
				continue
			}
			st.Respond(StatusOK)
			io.Copy(st, st)
			st.Close()
		}
	}()
	st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("p2pd"), 50000)
	go func() { st.Write(msg); st.CloseWrite() }()
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %d bytes, err %v", len(got), err)
	}
	st.Close()
	_, err = sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "nope"}, time.Second)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != StatusUnknownService {
		t.Fatalf("unknown service: got %v", err)
	}
	wg.Wait()
	if rtt, err := sa.Ping(ctx); err != nil || rtt <= 0 {
		t.Fatalf("ping: %v %v", rtt, err)
	}
	if rtt, err := sb.Ping(ctx); err != nil || rtt <= 0 {
		t.Fatalf("ping from responder: %v %v", rtt, err)
	}
	sa.Close(CodeGoingAway)
	select {
	case <-sb.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("responder did not see the close")
	}
	var ce *CloseError
	if !errors.As(sb.Err(), &ce) || ce.Code != CodeGoingAway || !ce.Remote {
		t.Fatalf("close cause at responder: %v", sb.Err())
	}
}

func TestUntrustedInitiatorRefusedBeforeMessage2(t *testing.T) {
	ka, kb := newKey(t), newKey(t)
	a := newEndpoint(t, ka, trustOnly(t, kb))
	b := newEndpoint(t, kb, trustOnly(t)) // trusts nobody
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.Dial(ctx, kb.PeerID(), addr(b))
	if !isRefused(err) {
		t.Fatalf("dial by an untrusted key: got %v, want a remote close with CodeRefused", err)
	}
	acceptNone(t, b, 300*time.Millisecond)
}

func TestWrongResponderKeyFails(t *testing.T) {
	ka, kb, kc := newKey(t), newKey(t), newKey(t)
	a := newEndpoint(t, ka, trustOnly(t, kb, kc))
	b := newEndpoint(t, kb, trustOnly(t, ka))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// a believes c is at b's address: b cannot decrypt a message meant for c.
	if _, err := a.Dial(ctx, kc.PeerID(), addr(b)); err == nil {
		t.Fatal("handshake with the wrong responder key succeeded")
	}
	acceptNone(t, b, 300*time.Millisecond)
}

// rawConn dials ep with a bare QUIC connection, as an attacker would.
func rawConn(t *testing.T, ctx context.Context, ep *Endpoint) (*quic.Conn, *quic.Stream) {
	t.Helper()
	tr := &quic.Transport{Conn: listenLoopback(t)}
	t.Cleanup(func() { tr.Close() })
	ua, _ := net.ResolveUDPAddr("udp", addr(ep))
	conn, err := tr.Dial(ctx, ua, clientTLS(), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return conn, st
}

func listenLoopback(t *testing.T) *net.UDPConn {
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return uc
}

// expectRefused waits for the connection to be closed with CodeRefused and
// checks that not one byte came back on the handshake stream.
func expectRefused(t *testing.T, conn *quic.Conn, st *quic.Stream) {
	t.Helper()
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.ReadFull(st, make([]byte, 1))
	if n != 0 {
		t.Fatalf("responder sent %d bytes; it must send nothing", n)
	}
	<-conn.Context().Done()
	if !isRefused(context.Cause(conn.Context())) {
		t.Fatalf("close: %v (read err %v), want CodeRefused", context.Cause(conn.Context()), err)
	}
}

// message1 builds a genuine message 1 from key to responder on conn.
func message1(t *testing.T, conn *quic.Conn, key identity.PrivateKey, responder identity.PeerID) []byte {
	t.Helper()
	exp, err := exporter(conn.ConnectionState().TLS)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.Public().NoisePublic()
	rs, _ := responder.PublicKey().NoisePublic()
	hs, err := handshake.NewInitiator(handshake.Config{Static: handshake.Keypair{Private: key.NoisePrivate(), Public: pub}, Prologue: handshake.BindingPrologue(exp)}, rs)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := handshake.Payload{Version: handshake.ProtocolVersion, Name: "raw"}.AppendBinary(nil)
	msg, err := hs.WriteMessage1(p)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestReplayedMessage1Refused(t *testing.T) {
	ka, kb := newKey(t), newKey(t)
	b := newEndpoint(t, kb, trustOnly(t, ka))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	conn1, st1 := rawConn(t, ctx, b)
	msg1 := message1(t, conn1, ka, kb.PeerID())
	if err := writeHandshakeMsg(st1, msg1); err != nil {
		t.Fatal(err)
	}
	if _, err := readHandshakeMsg(st1); err != nil {
		t.Fatalf("the genuine message 1 was not answered: %v", err)
	}
	s, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(CodeNormal)

	conn2, st2 := rawConn(t, ctx, b)
	if err := writeHandshakeMsg(st2, msg1); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, conn2, st2)
	acceptNone(t, b, 300*time.Millisecond)
}

func TestMalformedMessage1Refused(t *testing.T) {
	ka, kb := newKey(t), newKey(t)
	b := newEndpoint(t, kb, trustOnly(t, ka))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cases := map[string]func(conn *quic.Conn, st *quic.Stream){
		"garbage": func(_ *quic.Conn, st *quic.Stream) {
			writeHandshakeMsg(st, bytes.Repeat([]byte{0xa5}, 120))
		},
		"truncated then FIN": func(conn *quic.Conn, st *quic.Stream) {
			msg := message1(t, conn, ka, kb.PeerID())
			st.Write([]byte{byte(len(msg) >> 8), byte(len(msg))})
			st.Write(msg[:len(msg)/2])
			st.Close()
		},
		"one bit flipped": func(conn *quic.Conn, st *quic.Stream) {
			msg := message1(t, conn, ka, kb.PeerID())
			msg[40] ^= 1
			writeHandshakeMsg(st, msg)
		},
		"oversized length": func(_ *quic.Conn, st *quic.Stream) {
			st.Write([]byte{0xff, 0xff})
			st.Write(make([]byte, 1000))
		},
		"empty": func(_ *quic.Conn, st *quic.Stream) {
			st.Write([]byte{0, 0})
		},
		"untrusted key": func(conn *quic.Conn, st *quic.Stream) {
			writeHandshakeMsg(st, message1(t, conn, newKey(t), kb.PeerID()))
		},
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			conn, st := rawConn(t, ctx, b)
			send(conn, st)
			expectRefused(t, conn, st)
		})
	}
	acceptNone(t, b, 300*time.Millisecond)
}
