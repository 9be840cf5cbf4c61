package p2pd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/p2pd/p2pd/node"
)

// Listen serves service to the peers named in allow ([[peers]] names, or
// "*" for every trusted peer) from this program: each stream a peer opens
// to service is a net.Conn from the listener's Accept. The conns support
// CloseWrite, a half-close the peer reads as EOF. Closing the listener
// removes the service and resets its live streams. A service of the config
// file with the same name is an error, as is an empty allow list.
func (s *Server) Listen(service string, allow ...string) (net.Listener, error) {
	if service == "" {
		return nil, errors.New("p2pd: Listen: empty service name")
	}
	if len(allow) == 0 {
		return nil, fmt.Errorf(`p2pd: Listen %q: no peer may connect; name peers in allow, or "*" for every trusted peer`, service)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(); err != nil {
		return nil, err
	}
	if _, dup := s.listeners[service]; dup {
		return nil, fmt.Errorf("p2pd: Listen %q: already listening", service)
	}
	for _, c := range s.cfg.Services {
		if c.Name == service {
			return nil, fmt.Errorf("p2pd: Listen %q: a service of the config has this name", service)
		}
	}
	l := &listener{srv: s, name: service, allow: append([]string(nil), allow...),
		addr: addr(s.node.ID().String() + "/" + service), conns: make(chan net.Conn), done: make(chan struct{})}
	s.listeners[service] = l
	if err := s.applyLocked(); err != nil {
		delete(s.listeners, service)
		return nil, err
	}
	return l, nil
}

// applyLocked gives the node the config's trust list and services plus the
// in-process ones. s.mu is held.
func (s *Server) applyLocked() error {
	peers, services := Trust(s.cfg)
	for _, l := range s.listeners {
		services = append(services, node.Service{Name: l.name, Target: "inproc:" + l.name, Protocol: "tcp", Allow: l.allow})
	}
	return s.node.Apply(peers, services)
}

// dialInProc is the node's DialInProc: it hands one end of a pipe to the
// listener's Accept and returns the other to the node.
func (s *Server) dialInProc(ctx context.Context, name string) (net.Conn, error) {
	s.mu.Lock()
	l := s.listeners[name]
	s.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("p2pd: in-process service %q: %w", name, syscall.ECONNREFUSED)
	}
	nodeEnd, appEnd := newPipe(l.addr, l.addr)
	select {
	case l.conns <- appEnd:
		return nodeEnd, nil
	case <-l.done:
		return nil, fmt.Errorf("p2pd: in-process service %q: %w", name, syscall.ECONNREFUSED)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// listener is an in-process service's net.Listener.
type listener struct {
	srv   *Server
	name  string
	allow []string
	addr  addr
	conns chan net.Conn // unbuffered: a conn is handed over only to Accept
	once  sync.Once
	done  chan struct{} // closed by shut
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close removes the service from the node (resetting its live streams) and
// ends Accept.
func (l *listener) Close() error {
	s := l.srv
	s.mu.Lock()
	var err error
	if s.listeners[l.name] == l {
		delete(s.listeners, l.name)
		err = s.applyLocked()
	}
	s.mu.Unlock()
	l.shut()
	return err
}

func (l *listener) shut() { l.once.Do(func() { close(l.done) }) }

func (l *listener) Addr() net.Addr { return l.addr }
