package transport

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// TestMITMRelayFails puts a relay between a and b that terminates QUIC on
// both sides (with its own throwaway certificate, as everyone has) and
// relays the handshake stream byte for byte. The exporters differ on the two
// connections, so the handshake must fail and no stream may cross.
func TestMITMRelayFails(t *testing.T) {
	ka, kb := newKey(t), newKey(t)
	a := newEndpoint(t, ka, trustOnly(t, kb))
	b := newEndpoint(t, kb, trustOnly(t, ka))

	cert, err := throwawayCert()
	if err != nil {
		t.Fatal(err)
	}
	mitm := &quic.Transport{Conn: listenLoopback(t)}
	ln, err := mitm.Listen(serverTLS(cert), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var relayed atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		down, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		defer down.CloseWithError(0, "")
		dst, _ := net.ResolveUDPAddr("udp", addr(b))
		up, err := mitm.Dial(ctx, dst, clientTLS(), &quic.Config{})
		if err != nil {
			return
		}
		defer up.CloseWithError(0, "")
		ds, err := down.AcceptStream(ctx)
		if err != nil {
			return
		}
		us, err := up.OpenStreamSync(ctx)
		if err != nil {
			return
		}
		var inner sync.WaitGroup
		inner.Add(2)
		go func() { defer inner.Done(); n, _ := io.Copy(us, ds); relayed.Add(n) }()
		go func() { defer inner.Done(); n, _ := io.Copy(ds, us); relayed.Add(n) }()
		select {
		case <-up.Context().Done():
		case <-down.Context().Done():
		case <-ctx.Done():
		}
		ds.CancelRead(0)
		us.CancelRead(0)
		ds.CancelWrite(0)
		us.CancelWrite(0)
		inner.Wait()
	}()

	_, err = a.Dial(ctx, kb.PeerID(), mitm.Conn.LocalAddr().String())
	if err == nil {
		t.Fatal("handshake through a TLS-terminating relay succeeded")
	}
	acceptNone(t, b, 300*time.Millisecond)
	cancel()
	ln.Close()
	wg.Wait()
	mitm.Close()
	if relayed.Load() == 0 {
		t.Fatal("the relay carried no handshake bytes: the test did not exercise the relay")
	}
}
