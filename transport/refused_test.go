package transport

import (
	"context"
	"testing"
	"time"
)

// TestRefusedHook: an untrusted initiator, over QUIC and over TCP, is
// reported to Config.Refused with its static key, its claimed name and its
// address; a trusted one is not.
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
			if r.NoiseStatic != want || r.Name != "test" || r.Carrier != tc.carrier || r.Remote == nil {
				t.Errorf("%s: hook got %+v, want a's key, name \"test\" and its address", tc.carrier, r)
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
