package main

import (
	"net"
	"sync"
)

// connServer accepts connections on a listener and runs a handler for each
// in its own goroutine. Close stops accepting, closes the live connections
// and waits for every goroutine it started.
type connServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex // guards conns and done
	conns map[net.Conn]struct{}
	done  bool
}

func serveConns(ln net.Listener, h func(net.Conn) error) *connServer {
	s := &connServer{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop(h)
	return s
}

func (s *connServer) acceptLoop(h func(net.Conn) error) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			h(c)
			s.untrack(c)
			c.Close()
		}()
	}
}

func (s *connServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *connServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Addr is the listening address.
func (s *connServer) Addr() net.Addr { return s.ln.Addr() }

// Close is idempotent.
func (s *connServer) Close() {
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}
