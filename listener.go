package p2pd

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/node"
)

// Listen serves the tcp service to the peers named in allow ([[peers]]
// names, or "*" for every trusted peer) from this program: each stream a
// peer opens to service is a net.Conn from the listener's Accept, whose
// RemoteAddr is the peer's ID. The conns support CloseWrite, a half-close
// the peer reads as EOF. Closing the listener removes the service and
// resets its live streams. A service name already served (Listen,
// ListenPacket or the config) is an error, as is an empty allow list.
func (s *Server) Listen(service string, allow ...string) (net.Listener, error) {
	l := &listener{conns: make(chan net.Conn)}
	if err := s.register(&l.inproc, "Listen", service, "tcp", allow, l); err != nil {
		return nil, err
	}
	return l, nil
}

// inproc is what the in-process services of Listen and ListenPacket share:
// the service they stand for and their end.
type inproc struct {
	srv      *Server
	name     string
	protocol string // "tcp" or "udp"
	allow    []string
	addr     addr
	once     sync.Once
	done     chan struct{} // closed by shut
}

// inprocListener is a listener of Listen or ListenPacket.
type inprocListener interface {
	// connect is the node's side of a new stream or flow from peer.
	connect(ctx context.Context, peer identity.PeerID) (net.Conn, error)
	base() *inproc
}

func (in *inproc) base() *inproc { return in }

func (in *inproc) shut() { in.once.Do(func() { close(in.done) }) }

// register fills in and adds the in-process service l, whose inproc is in,
// and gives it to the node. call names the method for errors.
func (s *Server) register(in *inproc, call, service, protocol string, allow []string, l inprocListener) error {
	if service == "" {
		return fmt.Errorf("p2pd: %s: empty service name", call)
	}
	if len(allow) == 0 {
		return fmt.Errorf(`p2pd: %s %q: no peer may connect; name peers in allow, or "*" for every trusted peer`, call, service)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(); err != nil {
		return err
	}
	if _, dup := s.listeners[service]; dup {
		return fmt.Errorf("p2pd: %s %q: already listening", call, service)
	}
	for _, c := range s.cfg.Services {
		if c.Name == service {
			return fmt.Errorf("p2pd: %s %q: a service of the config has this name", call, service)
		}
	}
	*in = inproc{srv: s, name: service, protocol: protocol, allow: append([]string(nil), allow...),
		addr: addr(s.node.ID().String() + "/" + service), done: make(chan struct{})}
	s.listeners[service] = l
	if err := s.applyLocked(); err != nil {
		delete(s.listeners, service)
		return err
	}
	return nil
}

// unregister removes the in-process service l (whose inproc is in) from the
// node, which resets its live streams and flows, and ends it.
func (in *inproc) unregister(l inprocListener) error {
	s := in.srv
	s.mu.Lock()
	var err error
	if s.listeners[in.name] == l {
		delete(s.listeners, in.name)
		err = s.applyLocked()
	}
	s.mu.Unlock()
	in.shut()
	return err
}

// applyLocked gives the node the config's trust list and services plus the
// in-process ones. s.mu is held.
func (s *Server) applyLocked() error {
	peers, services := Trust(s.cfg)
	for _, l := range s.listeners {
		in := l.base()
		services = append(services, node.Service{Name: in.name, Target: "inproc:" + in.name, Protocol: in.protocol, Allow: in.allow})
	}
	return s.node.Apply(peers, services)
}

// dialInProc is the node's DialInProc: it connects peer's stream or flow
// to the in-process service name.
func (s *Server) dialInProc(ctx context.Context, name string, peer identity.PeerID) (net.Conn, error) {
	s.mu.Lock()
	l := s.listeners[name]
	s.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("p2pd: in-process service %q: %w", name, syscall.ECONNREFUSED)
	}
	return l.connect(ctx, peer)
}

// listener is a tcp in-process service's net.Listener.
type listener struct {
	inproc
	conns chan net.Conn // unbuffered: a conn is handed over only to Accept
}

// connect hands one end of a pipe to Accept and returns the other.
func (l *listener) connect(ctx context.Context, peer identity.PeerID) (net.Conn, error) {
	nodeEnd, appEnd := newPipe(addr(peer.String()), l.addr)
	select {
	case l.conns <- appEnd:
		return nodeEnd, nil
	case <-l.done:
		return nil, fmt.Errorf("p2pd: in-process service %q: %w", l.name, syscall.ECONNREFUSED)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
func (l *listener) Close() error { return l.unregister(l) }

func (l *listener) Addr() net.Addr { return l.addr }
