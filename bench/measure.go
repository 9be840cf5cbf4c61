package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	rttMsgSize    = 64
	rttWarmup     = 500
	rrWarmup      = 20  // round trips per connection before the clock starts
	connRateLimit = 100 // failures after which a connection-rate run gives up
)

// measureBulk moves total bytes from the bulk backend to the harness over
// streams parallel connections and returns MiB/s. The clock starts once every
// connection is open and stops when the last byte has arrived.
func measureBulk(ctx context.Context, s *system, total int64, streams int) (float64, error) {
	per := total / int64(streams)
	conns, closeAll, err := dialConns(ctx, s, targetBulk, streams)
	if err != nil {
		return 0, err
	}
	defer closeAll()
	errs := make([]error, streams)
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = bulkDown(c, per)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(per*int64(streams)) / (1 << 20) / elapsed.Seconds(), nil
}

// bulkDown asks for n bytes and reads exactly n.
func bulkDown(c io.ReadWriter, n int64) error {
	var hdr [bulkHdrLen]byte
	hdr[0] = bulkOpDown
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	if _, err := c.Write(hdr[:]); err != nil {
		return err
	}
	buf := make([]byte, ioBufferSize)
	var got int64
	for got < n {
		m, err := c.Read(buf[:min(int64(len(buf)), n-got)])
		got += int64(m)
		if err != nil && got < n { // a stream may return its last bytes together with EOF
			return fmt.Errorf("bench: bulk read %d of %d bytes: %w", got, n, err)
		}
	}
	return nil
}

// dialConns opens n connections to target, all before anything is timed.
// They are closed when ctx ends (which unblocks their readers) and by
// closeAll, which the caller defers.
func dialConns(ctx context.Context, s *system, target, n int) (conns []io.ReadWriteCloser, closeAll func(), err error) {
	conns = make([]io.ReadWriteCloser, 0, n)
	closeConns := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for range n {
		c, err := s.dial(ctx, target)
		if err != nil {
			closeConns()
			return nil, nil, err
		}
		conns = append(conns, c)
	}
	stop := context.AfterFunc(ctx, closeConns)
	return conns, func() { stop(); closeConns() }, nil
}

// echoRound returns a function that does one 64-byte round trip on c: write
// the message, read its echo, check it.
func echoRound(c io.ReadWriter) func() error {
	msg := make([]byte, rttMsgSize)
	copy(msg, payload)
	back := make([]byte, rttMsgSize)
	return func() error {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, back); err != nil {
			return err
		}
		if string(back) != string(msg) {
			return errors.New("bench: echo differs from the message sent")
		}
		return nil
	}
}

// percentilesUS sorts d and returns its p50 and p99 in µs.
func percentilesUS(d []time.Duration) (p50, p99 float64) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	us := func(q int) float64 { return float64(d[min(len(d)-1, len(d)*q/100)]) / 1e3 }
	return us(50), us(99)
}

// measureRTT sends count 64-byte messages one at a time on one connection,
// each answered by its echo, and returns the p50 and p99 round trip in µs.
func measureRTT(ctx context.Context, s *system, count int) (p50, p99 float64, err error) {
	conns, closeAll, err := dialConns(ctx, s, targetEcho, 1)
	if err != nil {
		return 0, 0, err
	}
	defer closeAll()
	round := echoRound(conns[0])
	for range rttWarmup {
		if err := round(); err != nil {
			return 0, 0, err
		}
	}
	d := make([]time.Duration, count)
	for i := range d {
		t0 := time.Now()
		if err := round(); err != nil {
			return 0, 0, err
		}
		d[i] = time.Since(t0)
	}
	p50, p99 = percentilesUS(d)
	return p50, p99, nil
}

// measureRR opens clients connections to the echo service, warms each up
// with rrWarmup round trips, then has all of them do 64-byte round trips at
// once, each waiting for its echo before the next, for dur. It returns the
// round trips completed per second (all connections together) and the p50
// and p99 of every round trip timed, in µs. The clock starts once every
// connection is open and warm; it stops when the last connection has
// finished its last round trip (none starts one after dur).
func measureRR(ctx context.Context, s *system, clients int, dur time.Duration) (rate, p50, p99 float64, err error) {
	conns, closeAll, err := dialConns(ctx, s, targetEcho, clients)
	if err != nil {
		return 0, 0, 0, err
	}
	defer closeAll()
	lat := make([][]time.Duration, clients)
	errs := make([]error, clients)
	var ready, done sync.WaitGroup
	begin := make(chan struct{})
	var end time.Time // written before begin is closed
	for i, c := range conns {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			round := echoRound(c)
			for range rrWarmup {
				if errs[i] = round(); errs[i] != nil {
					ready.Done()
					return
				}
			}
			ready.Done()
			<-begin
			for t0 := time.Now(); t0.Before(end); {
				if errs[i] = round(); errs[i] != nil {
					return
				}
				t1 := time.Now()
				lat[i] = append(lat[i], t1.Sub(t0))
				t0 = t1
			}
		}()
	}
	ready.Wait()
	start := time.Now()
	end = start.Add(dur)
	close(begin)
	done.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, 0, 0, err
	}
	all := slices.Concat(lat...)
	p50, p99 = percentilesUS(all)
	return float64(len(all)) / elapsed.Seconds(), p50, p99, nil
}

// measureConnRate opens connections for dur with par workers, each
// connection echoing one byte and closing, and returns connections per
// second and the number that failed.
func measureConnRate(ctx context.Context, s *system, dur time.Duration, par int) (float64, int64, error) {
	var ok, failed atomic.Int64
	start := time.Now()
	end := start.Add(dur)
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil && failed.Load() < connRateLimit {
				if err := echoOnce(ctx, s, 5*time.Second); err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed.Load() >= connRateLimit {
		return 0, failed.Load(), fmt.Errorf("bench: %d connections failed", failed.Load())
	}
	return float64(ok.Load()) / elapsed.Seconds(), failed.Load(), nil
}
