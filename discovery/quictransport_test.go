package discovery

import (
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// TestRaiseForOverlay checks the config libp2p's listener gets on a shared
// socket: the overlay's stream limit (lower than libp2p's: it is what a
// stranger may open before authentication), its windows where higher, the overlay's
// timeouts, the smaller first packet, and libp2p's own other settings.
func TestRaiseForOverlay(t *testing.T) {
	libp2p := &quic.Config{MaxIncomingStreams: 256, MaxIncomingUniStreams: 5, MaxStreamReceiveWindow: 10 << 20,
		MaxConnectionReceiveWindow: 15 << 20, KeepAlivePeriod: 15 * time.Second, Versions: []quic.Version{quic.Version1}}
	overlay := &quic.Config{MaxIncomingStreams: 64, MaxStreamReceiveWindow: 16 << 20, MaxConnectionReceiveWindow: 64 << 20,
		KeepAlivePeriod: 5 * time.Second, MaxIdleTimeout: 30 * time.Second, HandshakeIdleTimeout: 10 * time.Second,
		InitialPacketSize: 1232}
	got := raiseForOverlay(libp2p, overlay)
	if got.MaxIncomingStreams != 64 || got.MaxStreamReceiveWindow != 16<<20 || got.MaxConnectionReceiveWindow != 64<<20 ||
		got.KeepAlivePeriod != 5*time.Second || got.MaxIdleTimeout != 30*time.Second || !got.EnableDatagrams ||
		got.InitialPacketSize != 1232 || got.MaxIncomingUniStreams != 5 || len(got.Versions) != 1 {
		t.Fatalf("raised config %+v", got)
	}
	if libp2p.MaxIncomingStreams != 256 || libp2p.InitialPacketSize != 0 {
		t.Fatal("raiseForOverlay changed libp2p's config in place")
	}
	for _, c := range []struct{ a, b, want uint16 }{{0, 1232, 1232}, {1232, 0, 1232}, {0, 0, 1280}, {1300, 1252, 1252}} {
		if got := smallerPacket(c.a, c.b); got != c.want {
			t.Errorf("smallerPacket(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
