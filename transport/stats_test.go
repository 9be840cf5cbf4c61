package transport

import (
	"context"
	"io"
	"runtime"
	"testing"
	"time"
)

// TestSessionStats moves 1 MiB and checks the packet counters of both ends
// and, on Linux, that sends are batched with GSO: without it every packet
// costs a syscall, the first waste a bulk profile shows.
func TestSessionStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, sb, _, _ := sessionPair(t, ctx)
	const size = 1 << 20
	done := make(chan error, 1)
	go func() {
		st, err := sb.AcceptStream(ctx)
		if err != nil {
			done <- err
			return
		}
		st.ReadRequest(time.Second)
		st.Respond(StatusOK)
		_, err = io.Copy(io.Discard, st)
		st.Close()
		done <- err
	}()
	st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "sink"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st.Close()
	a, b := sa.Stats(), sb.Stats()
	// At most 1452 bytes per packet: 1 MiB needs over 700.
	if a.PacketsSent < size/1452 || b.PacketsReceived < size/1452 || a.BytesSent < size {
		t.Fatalf("sender %+v, receiver %+v: counters too low for 1 MiB", a, b)
	}
	if a.PacketsLost > a.PacketsSent/10 {
		t.Errorf("%d of %d packets lost on loopback", a.PacketsLost, a.PacketsSent)
	}
	if runtime.GOOS == "linux" && (!a.GSO || !b.GSO) {
		t.Errorf("GSO off on loopback (sender %v, receiver %v)", a.GSO, b.GSO)
	}
}
