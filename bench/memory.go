package main

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	memOpeners     = 16 // connections opened in parallel
	memGiveUpAfter = 32 // failed connections after which opening stops
	memOpenLimit   = 5 * time.Second
	memBlock       = 64 << 10 // echoed on every held connection for the second reading
	memSettle      = time.Second
)

// memOpenConns measures a freshly started tunnel's RSS with n open proxied
// connections, each of which has echoed one byte and stays open. It records
// RSS per connection on each side, the RSS with the connections open, and
// how many were held.
// Totals (held, RSS) are recorded only when n is the run's -mem-conns.
func (r *runner) memOpenConns(sys *system, n int) error {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Minute)
	defer cancel()
	for range 50 { // the session and the pools are warm; what follows is per connection
		if err := echoOnce(ctx, sys, 10*time.Second); err != nil {
			return err
		}
	}
	time.Sleep(memSettle)
	c0, _ := rssKiB(sys.client.pid())
	s0, _ := rssKiB(sys.server.pid())

	var mu sync.Mutex // guards held
	held := make([]io.ReadWriteCloser, 0, n)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range memOpeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && failed.Load() < memGiveUpAfter && ctx.Err() == nil {
				c, err := openHeld(ctx, sys)
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	time.Sleep(memSettle)
	alive := 0 // every connection must still answer
	for _, c := range held {
		if setDeadline(c, 10*time.Second); echoByte(c) == nil {
			alive++
		}
	}
	c1, _ := rssKiB(sys.client.pid())
	s1, _ := rssKiB(sys.server.pid())
	if n == r.o.memConns {
		r.res.add("mem_conns_held", sys.name, float64(alive))
		r.res.add("mem_rss_client", sys.name, float64(c1)/1024)
		r.res.add("mem_rss_server", sys.name, float64(s1)/1024)
	}
	if alive > 0 {
		r.res.add("mem_conn_client", sys.name, float64(c1-c0)/float64(alive))
		r.res.add("mem_conn_server", sys.name, float64(s1-s0)/float64(alive))
	}
	// Then 64 KiB each way on every connection, which touches whatever
	// buffers a connection keeps (a buffer allocated but never written
	// costs no RSS).
	if moved := echoAll(ctx, held, memBlock); moved > 0 {
		time.Sleep(memSettle)
		c2, _ := rssKiB(sys.client.pid())
		s2, _ := rssKiB(sys.server.pid())
		r.res.add("mem_conn_client_64k", sys.name, float64(c2-c0)/float64(moved))
		r.res.add("mem_conn_server_64k", sys.name, float64(s2-s0)/float64(moved))
		r.logf("memory %s: after %d KiB on each of %d: client RSS %d KiB, server RSS %d KiB", sys.name, memBlock>>10, moved, c2, s2)
	}
	if alive < n {
		r.res.note("memory, %s: %d of %d proxied connections held and answering (%d failed to open); per-connection RSS is over those held",
			sys.name, alive, n, failed.Load())
	}
	r.logf("memory %s: %d/%d connections held; client RSS %d→%d KiB, server RSS %d→%d KiB", sys.name, alive, n, c0, c1, s0, s1)
	return nil
}

// openHeld opens a connection and echoes one byte on it.
func openHeld(ctx context.Context, sys *system) (io.ReadWriteCloser, error) {
	dctx, cancel := context.WithTimeout(ctx, memOpenLimit)
	defer cancel()
	c, err := sys.dial(dctx, targetEcho)
	if err != nil {
		return nil, err
	}
	setDeadline(c, memOpenLimit)
	if err := echoByte(c); err != nil {
		c.Close()
		return nil, err
	}
	setDeadline(c, 0)
	return c, nil
}

// setDeadline sets (d > 0) or clears a net.Conn's deadline.
func setDeadline(c io.ReadWriteCloser, d time.Duration) {
	nc, ok := c.(net.Conn)
	if !ok {
		return
	}
	if d == 0 {
		nc.SetDeadline(time.Time{})
		return
	}
	nc.SetDeadline(time.Now().Add(d))
}

// echoAll echoes size bytes on every connection, a few at a time, and
// returns on how many it succeeded.
func echoAll(ctx context.Context, conns []io.ReadWriteCloser, size int) int {
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	for range memOpeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			for i := next.Add(1) - 1; i < int64(len(conns)) && ctx.Err() == nil; i = next.Add(1) - 1 {
				if echoBlock(conns[i], buf) == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// echoBlock writes payload bytes while reading their echo.
func echoBlock(c io.ReadWriteCloser, buf []byte) error {
	setDeadline(c, 30*time.Second)
	defer setDeadline(c, 0)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload[:len(buf)])
		werr <- err
	}()
	_, rerr := io.ReadFull(c, buf)
	if err := <-werr; err != nil {
		return err
	}
	return rerr
}
