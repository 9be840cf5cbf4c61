package proxy

import (
	"container/list"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// guardedListener is a local proxy's socket. Its Accept follows the policy
// of a forward's accept loop (accept.go, with the same constants, episode
// logging and fixes): a failed accept (EMFILE and the like) is counted and
// retried after a backoff, never returned. Accept returns only
// net.ErrClosed, after Close.
//
// At the cap, a new connection takes the slot of the oldest connection that
// is idle (still in its SOCKS5 handshake or before its HTTP request head:
// see markIdle), which is closed; only when none is idle is the new one
// reset instead. So idle connections, however many, cannot keep a working
// client out (slowloris), and the handshake deadline frees their slots in
// any case. Both are counted and logged at most once per warnEvery.
//
// A connection Accept returns holds a slot until done is called once for
// it. Accept is called from one goroutine (the listener's serve loop or
// net/http's Serve); the counters may be read from any.
type guardedListener struct {
	net.Listener
	kind string // "socks5" or "http", for log lines
	log  *slog.Logger
	max  atomic.Int64 // the cap in force; Server.Apply may change it

	closed    chan struct{} // closed by Close, ends a backoff
	closeOnce sync.Once
	closeErr  error
	st        acceptState // Accept's own

	idle idleSet // connections that may be closed to make room

	active                                atomic.Int64
	total, refused, evicted, acceptErrors atomic.Uint64
}

// idleSet holds the connections that may be closed to make room, oldest
// first. Accept adds every connection it returns; the SOCKS5 handler takes
// it out when its handshake is done, the HTTP server's ConnState hook when
// a request head has come (and puts it back between requests).
type idleSet struct {
	mu    sync.Mutex // guards order and at
	order list.List  // of net.Conn, oldest first
	at    map[net.Conn]*list.Element
}

// markIdle adds c to the idle connections, unless it is there already.
func (g *guardedListener) markIdle(c net.Conn) {
	g.idle.mu.Lock()
	defer g.idle.mu.Unlock()
	if g.idle.at == nil {
		g.idle.at = make(map[net.Conn]*list.Element)
	}
	if _, ok := g.idle.at[c]; !ok {
		g.idle.at[c] = g.idle.order.PushBack(c)
	}
}

// markBusy takes c out of the idle connections, if it is there.
func (g *guardedListener) markBusy(c net.Conn) {
	g.idle.mu.Lock()
	defer g.idle.mu.Unlock()
	if e, ok := g.idle.at[c]; ok {
		g.idle.order.Remove(e)
		delete(g.idle.at, c)
	}
}

// evictOldest closes the oldest idle connection, if there is one.
func (g *guardedListener) evictOldest() bool {
	g.idle.mu.Lock()
	e := g.idle.order.Front()
	if e != nil {
		g.idle.order.Remove(e)
		delete(g.idle.at, e.Value.(net.Conn))
	}
	g.idle.mu.Unlock()
	if e == nil {
		return false
	}
	abortConn(e.Value.(net.Conn))
	return true
}

// abortConn resets c (TCP) or closes it.
func abortConn(c net.Conn) {
	if nc := NetConn(c); nc != nil {
		nc.Abort()
		return
	}
	c.Close()
}

func newGuardedListener(ln net.Listener, kind string, limit int, log *slog.Logger) *guardedListener {
	g := &guardedListener{Listener: ln, kind: kind, log: log, closed: make(chan struct{})}
	g.max.Store(int64(limit))
	return g
}

// Accept returns the next connection within the cap.
func (g *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			g.acceptFailed(err)
			t := time.NewTimer(g.st.delay)
			select {
			case <-t.C:
			case <-g.closed:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		if g.st.failed > 0 {
			if g.st.warned {
				g.log.Info(g.kind+" proxy: accepting again after "+strconv.FormatUint(g.st.failed, 10)+" failed accepts",
					"listen", g.Addr().String())
			}
			g.st.failed, g.st.warned, g.st.delay = 0, false, 0
		}
		if limit := g.max.Load(); g.active.Load() >= limit {
			// The evicted connection gives its slot back when its
			// handler sees the close; until then one more is open.
			evicted := g.evictOldest()
			if evicted {
				g.evicted.Add(1)
			} else {
				g.refused.Add(1)
				abortConn(c)
			}
			if now := time.Now(); now.Sub(g.st.lastRefuse) >= warnEvery {
				g.st.lastRefuse = now
				g.log.Warn(g.kind+" proxy: at its connection cap; idle connections are closed to make room, or new ones reset when none is idle",
					"listen", g.Addr().String(), "max_connections", limit,
					"evicted", g.evicted.Load(), "refused", g.refused.Load(),
					"fix", "raise [proxy] max_connections, then p2pctl reload")
			}
			if !evicted {
				continue
			}
		}
		g.active.Add(1)
		g.total.Add(1)
		g.markIdle(c)
		return c, nil
	}
}

// done gives back the slot of a connection Accept returned.
func (g *guardedListener) done() { g.active.Add(-1) }

// Close closes the socket and ends a backoff in progress. It is idempotent:
// net/http's Shutdown closes a listener that retire closed already.
func (g *guardedListener) Close() error {
	g.closeOnce.Do(func() {
		close(g.closed)
		g.closeErr = g.Listener.Close()
	})
	return g.closeErr
}

// acceptFailed counts a failed accept, logs the episode's warning when one
// is due (as Forwarder.acceptFailed) and sets the next backoff.
func (g *guardedListener) acceptFailed(err error) {
	g.acceptErrors.Add(1)
	if !g.st.fail() {
		return
	}
	g.log.Warn(g.kind+" proxy: accept failing; retrying until it works",
		"listen", g.Addr().String(), "err", err, "rlimit_nofile", nofileText(),
		"accept_errors", g.acceptErrors.Load(), "fix", acceptFix(err))
}
