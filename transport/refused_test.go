package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/p2pd/p2pd/handshake"
	"github.com/p2pd/p2pd/identity"
)

// TestRefusedHook: an untrusted initiator, over QUIC and over TCP, is
// reported to Config.Refused with its static key, its exact peer ID (from
// the Ed25519 key in its payload), its claimed name and its address; a
// trusted one is not.
func TestRefusedHook(t *testing.T) {
	ka, kb := newKey(t), newKey(t)
	got := make(chan Refusal, 4)
	b, err := Listen(Config{Key: kb, Listen: []string{"127.0.0.1:0"}, ListenTCP: []string{"127.0.0.1:0"}, Name: "b",
		Trust: trustOnly(t), Refused: func(r Refusal) { got <- r }, HandshakeTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a := newEndpoint(t, ka, trustOnly(t, kb)) // Name "test"
	want, _ := ka.Public().NoisePublic()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		carrier string
		dial    func() error
	}{
		{"quic", func() error { _, err := a.Dial(ctx, kb.PeerID(), addr(b)); return err }},
		{"tcp", func() error { _, err := a.DialTCP(ctx, kb.PeerID(), b.TCPAddrs()[0].String()); return err }},
	} {
		if err := tc.dial(); err == nil {
			t.Fatalf("%s: an untrusted key got a session", tc.carrier)
		}
		select {
		case r := <-got:
			if r.NoiseStatic != want || r.PeerID != ka.PeerID() || r.Name != "test" || r.Carrier != tc.carrier || r.Remote == nil {
				t.Errorf("%s: hook got %+v, want a's key and peer ID %s, name \"test\" and its address", tc.carrier, r, ka.PeerID())
			}
		case <-ctx.Done():
			t.Fatalf("%s: the refusal was not reported", tc.carrier)
		}
	}
	select {
	case r := <-got:
		t.Errorf("an extra refusal was reported: %+v", r)
	default:
	}
}

// TestRefusedIdentity: over TCP, with a hand-made message 1, the responder
// answers a trusted initiator whose payload states its own Ed25519 key or
// none (an older node), and refuses one that states another key the same
// way as a garbled payload: closed with no byte sent. An untrusted
// initiator is reported with its exact ID only when the key it states is
// its own; without one the ID is left to the node, and with another one
// the payload counts as garbled (no name, no ID).
func TestRefusedIdentity(t *testing.T) {
	ka, kb, kc, kx := newKey(t), newKey(t), newKey(t), newKey(t)
	got := make(chan Refusal, 8)
	b, err := Listen(Config{Key: kb, Listen: []string{"127.0.0.1:0"}, ListenTCP: []string{"127.0.0.1:0"}, Name: "b",
		Trust: trustOnly(t, ka), Refused: func(r Refusal) { got <- r }, HandshakeTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	bStatic, _ := kb.Public().NoisePublic()
	pubOf := func(k identity.PrivateKey) []byte { p := k.Public(); return p[:] }

	// hello sends message 1 from key with payload identity ident and
	// reports whether message 2 came back.
	hello := func(key identity.PrivateKey, ident []byte) bool {
		t.Helper()
		c, err := net.Dial("tcp", b.TCPAddrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		pub, _ := key.Public().NoisePublic()
		hs, err := handshake.NewInitiator(handshake.Config{Static: handshake.Keypair{Private: key.NoisePrivate(), Public: pub},
			Prologue: []byte(tcpPrologue), Suite: handshake.SuiteAESGCMSHA256}, bStatic)
		if err != nil {
			t.Fatal(err)
		}
		payload := mustHello(t, handshake.Payload{Version: handshake.ProtocolVersion, Name: "hand", Identity: ident})
		msg1, err := hs.WriteMessage1(payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeHandshakeMsg(c, msg1); err != nil {
			t.Fatal(err)
		}
		msg2, err := readHandshakeMsg(c)
		if err != nil {
			return false
		}
		if _, err := hs.ReadMessage2(msg2); err != nil {
			t.Fatalf("message 2: %v", err)
		}
		return true
	}
	refusal := func(what string) Refusal {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the refusal was not reported", what)
		}
		return Refusal{}
	}

	if !hello(ka, pubOf(ka)) {
		t.Error("trusted, own identity: no message 2")
	}
	if !hello(ka, nil) {
		t.Error("trusted, no identity (an older node): no message 2")
	}
	if hello(ka, pubOf(kx)) {
		t.Error("trusted, another key's identity: answered with message 2")
	}

	cStatic, _ := kc.Public().NoisePublic()
	if hello(kc, pubOf(kc)) {
		t.Fatal("untrusted: answered with message 2")
	}
	if r := refusal("own identity"); r.NoiseStatic != cStatic || r.PeerID != kc.PeerID() || r.Name != "hand" || r.Carrier != "tcp" {
		t.Errorf("own identity: hook got %+v, want c's key, peer ID %s and name", r, kc.PeerID())
	}
	hello(kc, nil)
	if r := refusal("no identity"); r.NoiseStatic != cStatic || !r.PeerID.IsZero() || r.Name != "hand" {
		t.Errorf("no identity: hook got %+v, want c's key and name, no peer ID", r)
	}
	hello(kc, pubOf(kx))
	if r := refusal("another identity"); r.NoiseStatic != cStatic || !r.PeerID.IsZero() || r.Name != "" {
		t.Errorf("another key's identity: hook got %+v, want c's key only, as for a garbled payload", r)
	}
	select {
	case r := <-got:
		t.Errorf("an extra refusal was reported: %+v", r)
	default:
	}
}

func mustHello(t *testing.T, p handshake.Payload) []byte {
	t.Helper()
	b, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
