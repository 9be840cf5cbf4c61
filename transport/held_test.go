package transport

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// TestHeldAnswer checks the OK held back for pipelined requests: it goes
// out with the first payload, alone after heldAnswerDelay when the
// accepting side writes nothing, before the FIN of CloseWrite, and never
// after an abort. Requests that are not pipelined are answered at once.
func TestHeldAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, sb, _, _ := sessionPair(t, ctx)
	ok, _ := Response{Status: StatusOK}.AppendBinary(nil)

	// open opens a stream from A with a raw request (so that the test reads
	// the answer bytes itself) and returns both ends after B answered OK.
	open := func(pipelined bool) (a *Stream, b *Stream) {
		t.Helper()
		req := Request{Kind: KindTCP, Service: "svc", Pipelined: pipelined}
		hdr, _ := req.AppendBinary(nil)
		qs, err := sa.conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a = sa.wrap(qs, sa.lanesNow()[0])
		if _, err := qs.Write(hdr); err != nil {
			t.Fatal(err)
		}
		b, err = sb.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.ReadRequest(time.Second)
		if err != nil || got != req {
			t.Fatalf("request %+v, %v; want %+v", got, err, req)
		}
		if err := b.Respond(StatusOK); err != nil {
			t.Fatal(err)
		}
		return a, b
	}
	// readWithin reads n bytes from a's raw stream within d.
	readWithin := func(a *Stream, n int, d time.Duration) ([]byte, error) {
		a.qs.SetReadDeadline(time.Now().Add(d))
		defer a.qs.SetReadDeadline(time.Time{})
		buf := make([]byte, n)
		_, err := io.ReadFull(a.qs, buf)
		return buf, err
	}

	t.Run("with first payload", func(t *testing.T) {
		a, b := open(true)
		if !b.held.Load() {
			t.Fatal("the OK of a pipelined request was not held")
		}
		payload := bytes.Repeat([]byte("p"), 3000) // more than coalesceMax
		if n, err := b.Write(payload); n != len(payload) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		got, err := readWithin(a, len(ok)+len(payload), time.Second)
		if err != nil || !bytes.Equal(got, append(append([]byte{}, ok...), payload...)) {
			t.Fatalf("got %q, %v; want the OK then the payload", got[:min(len(got), 16)], err)
		}
		a.Close()
		b.Close()
	})

	t.Run("alone after the delay", func(t *testing.T) {
		a, b := open(true)
		start := time.Now()
		got, err := readWithin(a, len(ok), 2*time.Second)
		if err != nil || !bytes.Equal(got, ok) {
			t.Fatalf("got %x, %v; want the OK", got, err)
		}
		if waited := time.Since(start); waited < heldAnswerDelay/2 {
			t.Errorf("the OK came after %v; it should be held about %v", waited, heldAnswerDelay)
		}
		// The flag is cleared just after the OK's write returns, which
		// may be a moment after the reader has it.
		for deadline := time.Now().Add(time.Second); b.held.Load() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if b.held.Load() {
			t.Error("held still set after the OK went out")
		}
		// Payload after the flush follows the OK, unprefixed.
		b.Write([]byte("late"))
		if got, err := readWithin(a, 4, time.Second); err != nil || string(got) != "late" {
			t.Fatalf("payload after the flush: %q, %v", got, err)
		}
		a.Close()
		b.Close()
	})

	t.Run("before the FIN", func(t *testing.T) {
		a, b := open(true)
		if err := b.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		a.qs.SetReadDeadline(time.Now().Add(time.Second))
		got, err := io.ReadAll(a.qs)
		if err != nil || !bytes.Equal(got, ok) {
			t.Fatalf("got %x, %v; want the OK then EOF", got, err)
		}
		a.Close()
		b.Close()
	})

	t.Run("dropped by an abort", func(t *testing.T) {
		a, b := open(true)
		b.Abort()
		got, err := readWithin(a, len(ok), time.Second)
		if err == nil || bytes.Equal(got, ok) {
			t.Fatalf("read %x, %v after an abort; want a reset and no OK", got, err)
		}
		time.Sleep(2 * heldAnswerDelay) // the timer must not write after the abort
		a.Close()
	})

	t.Run("not pipelined", func(t *testing.T) {
		a, b := open(false)
		if b.held.Load() {
			t.Fatal("the OK of a request that waits for it was held")
		}
		got, err := readWithin(a, len(ok), heldAnswerDelay/2)
		if err != nil || !bytes.Equal(got, ok) {
			t.Fatalf("got %x, %v; want the OK at once", got, err)
		}
		a.Close()
		b.Close()
	})
}
