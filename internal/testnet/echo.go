// Package testnet holds small real network servers for the project's tests.
package testnet

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Echo is a TCP echo server on loopback that counts the connections it
// accepts. It echoes until the client's EOF, then half-closes and drains.
// NewEcho registers Close with the test's cleanup.
type Echo struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup // the accept loop and the connections
	mu       sync.Mutex     // guards conns
	conns    map[net.Conn]struct{}
}

// NewEcho starts an Echo on 127.0.0.1 with a free port.
func NewEcho(tb testing.TB) *Echo {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	e := &Echo{ln: ln, conns: make(map[net.Conn]struct{})}
	e.wg.Go(e.serve)
	tb.Cleanup(e.Close)
	return e
}

// Addr is the server's "host:port".
func (e *Echo) Addr() string { return e.ln.Addr().String() }

// Accepted is how many connections the server has accepted.
func (e *Echo) Accepted() int64 { return e.accepted.Load() }

func (e *Echo) serve() {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.accepted.Add(1)
		e.mu.Lock()
		e.conns[c] = struct{}{}
		e.mu.Unlock()
		e.wg.Go(func() {
			defer func() {
				e.mu.Lock()
				delete(e.conns, c)
				e.mu.Unlock()
				c.Close()
			}()
			if _, err := io.Copy(c, c); err == nil {
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
			}
		})
	}
}

// Close stops the server, closes its connections and waits for them.
func (e *Echo) Close() {
	e.ln.Close()
	e.mu.Lock()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}
