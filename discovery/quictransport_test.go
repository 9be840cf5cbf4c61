package discovery

import (
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// TestRaiseForOverlay checks the config libp2p's listener gets on a shared
// socket: the overlay's stream limit (lower than libp2p's: it is what a
// stranger may open before authentication), its windows where higher, the overlay's
// handshake timeout, the smaller first packet, and libp2p's own other
// settings, its idle timeout and keep-alive among them.
func TestRaiseForOverlay(t *testing.T) {
	libp2p := &quic.Config{MaxIncomingStreams: 256, MaxIncomingUniStreams: 5, MaxStreamReceiveWindow: 10 << 20,
		MaxConnectionReceiveWindow: 15 << 20, KeepAlivePeriod: 15 * time.Second, Versions: []quic.Version{quic.Version1}}
	overlay := &quic.Config{MaxIncomingStreams: 64, MaxStreamReceiveWindow: 16 << 20, MaxConnectionReceiveWindow: 64 << 20,
		KeepAlivePeriod: time.Second, MaxIdleTimeout: 3500 * time.Millisecond, HandshakeIdleTimeout: 10 * time.Second,
		InitialPacketSize: 1232}
	got := raiseForOverlay(libp2p, overlay)
	if got.MaxIncomingStreams != 64 || got.MaxStreamReceiveWindow != 16<<20 || got.MaxConnectionReceiveWindow != 64<<20 ||
		got.KeepAlivePeriod != 15*time.Second || got.MaxIdleTimeout != 0 || got.HandshakeIdleTimeout != 10*time.Second || !got.EnableDatagrams ||
		got.InitialPacketSize != 1232 || got.MaxIncomingUniStreams != 5 || len(got.Versions) != 1 {
		t.Fatalf("raised config %+v", got)
	}
	libp2p.MaxIdleTimeout = 2 * time.Second
	if got := raiseForOverlay(libp2p, overlay); got.MaxIdleTimeout != 3500*time.Millisecond {
		t.Fatalf("idle timeout %v: want the overlay's 3.5 s when libp2p asks for less", got.MaxIdleTimeout)
	}
	libp2p.MaxIdleTimeout = 0
	if libp2p.MaxIncomingStreams != 256 || libp2p.InitialPacketSize != 0 {
		t.Fatal("raiseForOverlay changed libp2p's config in place")
	}
	for _, c := range []struct{ a, b, want uint16 }{{0, 1232, 1232}, {1232, 0, 1232}, {0, 0, 1280}, {1300, 1252, 1252}} {
		if got := smallerPacket(c.a, c.b); got != c.want {
			t.Errorf("smallerPacket(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
