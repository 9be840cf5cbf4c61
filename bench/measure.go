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
	connRateLimit = 100 // failures after which a connection-rate run gives up
)

// measureBulk moves total bytes from the bulk backend to the harness over
// streams parallel connections and returns MiB/s. The clock starts once every
// connection is open and stops when the last byte has arrived.
func measureBulk(ctx context.Context, s *system, total int64, streams int) (float64, error) {
	per := total / int64(streams)
	conns := make([]io.ReadWriteCloser, 0, streams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range streams {
		c, err := s.dial(ctx, targetBulk)
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer stop()
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

// measureRTT sends count 64-byte messages one at a time on one connection,
// each answered by its echo, and returns the p50 and p99 round trip in µs.
func measureRTT(ctx context.Context, s *system, count int) (p50, p99 float64, err error) {
	c, err := s.dial(ctx, targetEcho)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	msg := make([]byte, rttMsgSize)
	copy(msg, payload)
	back := make([]byte, rttMsgSize)
	round := func() error {
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
	slices.Sort(d)
	us := func(q int) float64 { return float64(d[min(len(d)-1, len(d)*q/100)]) / 1e3 }
	return us(50), us(99), nil
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
