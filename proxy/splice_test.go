package proxy_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/p2pd/p2pd/proxy"
)

// spliced is c1 ⇄ [a ⇄ Splice ⇄ b] ⇄ c2 over loopback TCP.
type spliced struct {
	c1, c2 *net.TCPConn
	done   chan spliceResult
}

type spliceResult struct {
	aToB, bToA int64
	err        error
}

func newSpliced(t *testing.T) *spliced {
	t.Helper()
	c1, a := tcpPair(t)
	b, c2 := tcpPair(t)
	s := &spliced{c1: c1, c2: c2, done: make(chan spliceResult, 1)}
	go func() {
		var r spliceResult
		r.aToB, r.bToA, r.err = proxy.Splice(proxy.NetConn(a), proxy.NetConn(b))
		s.done <- r
	}()
	t.Cleanup(func() { c1.Close(); c2.Close(); <-s.done })
	return s
}

func (s *spliced) result(t *testing.T) spliceResult {
	t.Helper()
	r := <-s.done
	s.done <- r // for the cleanup
	return r
}

// TestSpliceHalfClose closes one direction at a time, each way round: EOF
// on one side reaches the other as EOF while the reverse direction still
// carries data, and Splice ends cleanly once both are done.
func TestSpliceHalfClose(t *testing.T) {
	for _, firstFromC1 := range []bool{true, false} {
		name := map[bool]string{true: "c1 first", false: "c2 first"}[firstFromC1]
		t.Run(name, func(t *testing.T) {
			s := newSpliced(t)
			first, second := s.c1, s.c2
			if !firstFromC1 {
				first, second = s.c2, s.c1
			}
			if _, err := first.Write([]byte("request")); err != nil {
				t.Fatal(err)
			}
			if err := first.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(second)
			if err != nil || string(got) != "request" {
				t.Fatalf("far side read %q, %v; want %q then EOF", got, err, "request")
			}
			// The half-closed side still receives.
			if _, err := second.Write([]byte("response")); err != nil {
				t.Fatalf("write back after the far side's EOF: %v", err)
			}
			if err := second.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err = io.ReadAll(first)
			if err != nil || string(got) != "response" {
				t.Fatalf("half-closed side read %q, %v; want %q then EOF", got, err, "response")
			}
			r := s.result(t)
			wantAB, wantBA := int64(7), int64(8)
			if !firstFromC1 {
				wantAB, wantBA = 8, 7
			}
			if r.err != nil || r.aToB != wantAB || r.bToA != wantBA {
				t.Fatalf("Splice = %d, %d, %v; want %d, %d, nil", r.aToB, r.bToA, r.err, wantAB, wantBA)
			}
		})
	}
}

// reset ends c with a TCP RST.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// TestSpliceAbortPropagates resets one outer connection: the other outer
// connection must see a reset, never a clean EOF that would pass a
// truncated transfer off as complete.
func TestSpliceAbortPropagates(t *testing.T) {
	for _, resetC1 := range []bool{true, false} {
		name := map[bool]string{true: "c1 resets", false: "c2 resets"}[resetC1]
		t.Run(name, func(t *testing.T) {
			s := newSpliced(t)
			resetter, other := s.c1, s.c2
			if !resetC1 {
				resetter, other = s.c2, s.c1
			}
			// Some data first, so the splice is known to be running.
			if _, err := resetter.Write([]byte("partial")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 7)
			if _, err := io.ReadFull(other, buf); err != nil {
				t.Fatal(err)
			}
			reset(resetter)
			n, err := other.Read(buf)
			if err == nil || errors.Is(err, io.EOF) {
				t.Fatalf("after the reset the other side read %d bytes, %v; want a reset", n, err)
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("other side: %v; want ECONNRESET", err)
			}
			if r := s.result(t); r.err == nil {
				t.Errorf("Splice returned no error after a reset")
			}
		})
	}
}

// TestSpliceLargeTransfer sends 4 MiB each way at once, byte-exact.
func TestSpliceLargeTransfer(t *testing.T) {
	const size = 4 << 20
	s := newSpliced(t)
	d1, d2 := randomBytes(size), randomBytes(size)
	var wg sync.WaitGroup
	var got1, got2 []byte
	var errs [4]error
	send := func(c *net.TCPConn, d []byte, slot int) {
		if _, errs[slot] = c.Write(d); errs[slot] == nil {
			errs[slot] = c.CloseWrite()
		}
	}
	wg.Go(func() { send(s.c1, d1, 0) })
	wg.Go(func() { send(s.c2, d2, 1) })
	readAll := func(c *net.TCPConn, got *[]byte, slot int) {
		var b bytes.Buffer
		b.Grow(size + 1)
		_, errs[slot] = b.ReadFrom(c)
		*got = b.Bytes()
	}
	wg.Go(func() { readAll(s.c2, &got2, 2) })
	wg.Go(func() { readAll(s.c1, &got1, 3) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("transfer %d: %v", i, err)
		}
	}
	if sha256.Sum256(got2) != sha256.Sum256(d1) || sha256.Sum256(got1) != sha256.Sum256(d2) {
		t.Fatalf("transfer not byte-exact: c1→c2 %d of %d bytes, c2→c1 %d of %d", len(got2), size, len(got1), size)
	}
	if r := s.result(t); r.err != nil || r.aToB != size || r.bToA != size {
		t.Fatalf("Splice = %d, %d, %v; want %d each way", r.aToB, r.bToA, r.err, size)
	}
}

// memConn is an allocation-free Conn: Read yields reads chunks, then EOF;
// Write discards.
type memConn struct {
	chunk   []byte
	reads   int
	left    int
	written int64
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	c.left--
	return copy(p, c.chunk), nil
}

func (c *memConn) Write(p []byte) (int, error) { c.written += int64(len(p)); return len(p), nil }
func (c *memConn) CloseWrite() error           { return nil }
func (c *memConn) Close() error                { return nil }
func (c *memConn) Abort()                      {}
func (c *memConn) reset()                      { c.left, c.written = c.reads, 0 }

// TestSpliceBuffersPooled checks that the copy allocates nothing per read:
// a splice of a thousand reads costs what a splice of ten does.
func TestSpliceBuffersPooled(t *testing.T) {
	allocs := func(reads int) float64 {
		a := &memConn{chunk: make([]byte, 4096), reads: reads}
		b := &memConn{}
		return testing.AllocsPerRun(50, func() {
			a.reset()
			b.reset()
			if n, _, err := proxy.Splice(a, b); err != nil || n != int64(reads*4096) {
				t.Fatalf("Splice copied %d bytes, %v; want %d", n, err, reads*4096)
			}
		})
	}
	few, many := allocs(10), allocs(1000)
	t.Logf("allocations per splice: %v with 10 reads, %v with 1000", few, many)
	if many > few+1 {
		t.Errorf("a splice of 1000 reads allocates %v times, of 10 reads %v: the copy allocates per read", many, few)
	}
	if few > 16 {
		t.Errorf("a splice allocates %v times; want a small constant (pooled buffers)", few)
	}
}
