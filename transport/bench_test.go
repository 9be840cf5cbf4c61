package transport

import (
	"context"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// BenchmarkSessionSetup dials a fresh session (QUIC + Noise IK) b.N times
// on loopback; for profiles of the handshake's CPU.
func BenchmarkSessionSetup(b *testing.B) {
	ka, _ := identity.GenerateKey(nil)
	kb, _ := identity.GenerateKey(nil)
	trust := func(k identity.PrivateKey) func([32]byte) (identity.PeerID, bool) {
		nk, _ := k.Public().NoisePublic()
		return func(s [32]byte) (identity.PeerID, bool) { return k.PeerID(), s == nk }
	}
	a, err := Listen(Config{Key: ka, Listen: []string{"127.0.0.1:0"}, Trust: trust(kb)})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	bep, err := Listen(Config{Key: kb, Listen: []string{"127.0.0.1:0"}, Trust: trust(ka)})
	if err != nil {
		b.Fatal(err)
	}
	defer bep.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			// The initiator closes each session; the responder only
			// waits (closing at once could overtake message 2).
			if _, err := bep.Accept(ctx); err != nil {
				return
			}
		}
	}()
	target := bep.Addrs()[0].String()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := a.Dial(ctx, kb.PeerID(), target)
		if err != nil {
			b.Fatal(err)
		}
		s.Close(CodeNormal)
	}
	b.StopTimer()
	cancel()
	<-done
}
