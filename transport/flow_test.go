package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
)

// flowEchoServer accepts udp streams on s and echoes each flow's datagrams.
func flowEchoServer(ctx context.Context, s *Session) {
	go func() {
		for {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				return
			}
			go func() {
				req, err := st.ReadRequest(time.Second)
				if err != nil {
					st.Abort()
					return
				}
				f, err := st.AcceptFlow(req)
				if err != nil {
					st.Respond(StatusBadRequest)
					return
				}
				st.Respond(StatusOK)
				buf := make([]byte, MaxFlowDatagram)
				for {
					n, err := f.ReadDatagram(buf)
					if err != nil {
						f.Close()
						return
					}
					if f.WriteDatagram(buf[:n]) != nil {
						return
					}
				}
			}()
		}
	}()
}

// TestFlows: udp flows carry datagrams byte-exact both ways over QUIC
// (small ones as QUIC datagrams, large ones framed on the stream) and over
// the TCP and relayed carriers (all framed); closing one end ends the other's flow.
func TestFlows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sizes := []int{1, 100, 1000, 1100, 3000, 9000, MaxFlowDatagram}
	for _, c := range []struct {
		name      string
		pair      func() (*Session, *Session)
		datagrams bool
	}{
		{"quic", func() (*Session, *Session) { sa, sb, _, _ := sessionPair(t, ctx); return sa, sb }, true},
		{"tcp", func() (*Session, *Session) { return tcpSessionPair(t, ctx) }, false},
		{"relayed", func() (*Session, *Session) { return relayedSessionPair(t, ctx) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sa, sb := c.pair()
			flowEchoServer(ctx, sb)
			flowEchoServer(ctx, sa)
			for _, dir := range []struct {
				name string
				s    *Session
			}{{"initiator", sa}, {"responder", sb}} {
				// Two flows from each side at once: their ids meet in the
				// same number space and the direction bit keeps them apart.
				f1, err := dir.s.OpenFlow(ctx, "echo", time.Second)
				if err != nil {
					t.Fatalf("%s: %v", dir.name, err)
				}
				f2, err := dir.s.OpenFlow(ctx, "echo", time.Second)
				if err != nil {
					t.Fatal(err)
				}
				testnet.EchoDatagrams(t, f1, sizes)
				testnet.EchoDatagrams(t, f2, sizes[:3])
				st := f1.Stats()
				if st.Datagrams != c.datagrams || st.Sent != uint64(len(sizes)) || st.Received != uint64(len(sizes)) {
					t.Fatalf("%s: stats %+v", dir.name, st)
				}
				if c.datagrams && (st.Framed == 0 || st.Framed == st.Sent) {
					t.Fatalf("%s: %d of %d datagrams framed on the stream; want only the large ones", dir.name, st.Framed, st.Sent)
				}
				if !c.datagrams && st.Framed != st.Sent {
					t.Fatalf("%s: %d of %d framed on the tcp carrier", dir.name, st.Framed, st.Sent)
				}
				f1.Close()
				if _, err := f1.ReadDatagram(make([]byte, 10)); !errors.Is(err, ErrFlowClosed) {
					t.Fatalf("read on a closed flow: %v", err)
				}
				if err := f1.WriteDatagram([]byte("x")); err == nil {
					t.Fatal("write on a closed flow succeeded")
				}
				testnet.EchoDatagrams(t, f2, sizes[:2]) // the other flow goes on
				f2.Close()
			}
		})
	}
}

// acceptOneFlow accepts the next stream on s as a flow, answers it and
// hands the flow over.
func acceptOneFlow(ctx context.Context, s *Session) <-chan *Flow {
	accepted := make(chan *Flow, 1)
	go func() {
		st, err := s.AcceptStream(ctx)
		if err != nil {
			return
		}
		req, _ := st.ReadRequest(time.Second)
		f, err := st.AcceptFlow(req)
		if err != nil {
			return
		}
		st.Respond(StatusOK)
		accepted <- f
	}()
	return accepted
}

// TestFlowPeerClose: a flow whose peer closes it ends with io.EOF after the
// datagrams already queued were read.
func TestFlowPeerClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, sb, _, _ := sessionPair(t, ctx)
	accepted := acceptOneFlow(ctx, sb)
	f, err := sa.OpenFlow(ctx, "x", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	g := <-accepted
	g.WriteDatagram([]byte("last"))
	// A datagram may overtake the stream's FIN or fall behind it (QUIC
	// orders neither against the other): close once it has arrived.
	deadline := time.Now().Add(5 * time.Second)
	for f.Stats().Received == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	g.Close()
	select {
	case <-f.Done():
	case <-ctx.Done():
		t.Fatal("the flow did not end when its peer closed it")
	}
	buf := make([]byte, 10)
	if n, err := f.ReadDatagram(buf); err != nil || string(buf[:n]) != "last" {
		t.Fatalf("queued datagram: %q %v", buf[:n], err)
	}
	if _, err := f.ReadDatagram(buf); err != io.EOF {
		t.Fatalf("after the peer's close: %v, want EOF", err)
	}
}

// TestFlowIdle: a flow ends after its idle timeout, and not before while
// datagrams flow.
func TestFlowIdle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, sb, _, _ := sessionPair(t, ctx)
	flowEchoServer(ctx, sb)
	f, err := sa.OpenFlow(ctx, "echo", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f.SetIdleTimeout(300 * time.Millisecond)
	for range 6 { // 6 × 100 ms of traffic: longer than the timeout
		testnet.EchoDatagrams(t, f, []int{10})
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-f.Done():
		t.Fatal("a busy flow idled out")
	default:
	}
	select {
	case <-f.Done():
	case <-ctx.Done():
		t.Fatal("an idle flow did not end")
	}
	if !errors.Is(f.Err(), ErrFlowClosed) {
		t.Fatalf("idle end: %v", f.Err())
	}
}

// TestFlowHeader: the datagram header round-trips and rejects what it must.
func TestFlowHeader(t *testing.T) {
	b := AppendFlowHeader(nil, 77, true)
	b = append(b, "payload"...)
	id, acc, p, err := ParseFlowHeader(b)
	if err != nil || id != 77 || !acc || string(p) != "payload" {
		t.Fatalf("got %d %v %q %v", id, acc, p, err)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, {0, 0, 0, 0}, {0x80, 0, 0, 0}} {
		if _, _, _, err := ParseFlowHeader(bad); !errors.Is(err, ErrBadHeader) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
	r := Request{Kind: KindUDP, Service: "dns", FlowID: MaxFlowID}
	enc, err := r.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := ParseRequest(enc)
	if err != nil || n != len(enc) || got != r {
		t.Fatalf("request round trip: %+v %d %v", got, n, err)
	}
}

func FuzzFlowHeader(f *testing.F) {
	f.Add(AppendFlowHeader(nil, 1, false))
	f.Add(append(AppendFlowHeader(nil, MaxFlowID, true), 1, 2, 3))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, acc, p, err := ParseFlowHeader(b)
		if err != nil {
			return
		}
		if id == 0 || id > MaxFlowID || len(p) != len(b)-FlowHeaderLen {
			t.Fatalf("accepted %x as flow %d, %d payload bytes", b, id, len(p))
		}
		again := append(AppendFlowHeader(nil, id, acc), p...)
		if !bytes.Equal(again, b) {
			t.Fatalf("%x re-encodes as %x", b, again)
		}
	})
}

// TestFlowQueueBound: datagrams a flow's reader has not taken are held up to
// flowQueueBytes; past that they are dropped and counted, and once the
// reader catches up the flow takes datagrams again. Without the byte bound
// 256 datagrams of 60 kB, 15 MiB, waited on one flow.
func TestFlowQueueBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb := tcpSessionPair(t, ctx)
	accepted := acceptOneFlow(ctx, sb)
	f, err := sa.OpenFlow(ctx, "x", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var g *Flow
	select {
	case g = <-accepted:
	case <-ctx.Done():
		t.Fatal("no flow accepted")
	}
	const size, sent = 60_000, 64
	datagram := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, size) }
	for i := range sent {
		if err := f.WriteDatagram(datagram(i)); err != nil {
			t.Fatal(err)
		}
	}
	settled := func(want uint64) FlowStats {
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := g.Stats()
			if st.Received+st.Dropped[DropQueueFull] == want || time.Now().After(deadline) {
				return st
			}
			time.Sleep(time.Millisecond)
		}
	}
	st := settled(sent)
	if want := uint64(flowQueueBytes / size); st.Received != want || st.Dropped[DropQueueFull] != sent-want {
		t.Fatalf("%d of %d datagrams of %d bytes held, %d dropped; want %d held, the rest dropped",
			st.Received, sent, size, st.Dropped[DropQueueFull], want)
	}
	buf := make([]byte, MaxFlowDatagram)
	for i := range int(st.Received) {
		n, err := g.ReadDatagram(buf)
		if err != nil || !bytes.Equal(buf[:n], datagram(i)) {
			t.Fatalf("held datagram %d: %d bytes, %v; want the %d bytes sent %d", i, n, err, size, i)
		}
	}
	if err := f.WriteDatagram(datagram(99)); err != nil {
		t.Fatal(err)
	}
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := g.ReadDatagram(buf); err != nil || !bytes.Equal(buf[:n], datagram(99)) {
		t.Fatalf("after the queue drained: %d bytes, %v; want the datagram sent", n, err)
	}
}
