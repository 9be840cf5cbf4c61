package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDialTimeout bounds how long a local connection waits for the
// overlay stream to its service.
const DefaultDialTimeout = 15 * time.Second

// Dialer opens an overlay stream to a peer's service. The node implements it.
type Dialer interface {
	DialService(ctx context.Context, peer, service string) (Conn, error)
}

// DefaultMaxConnections is a forward's cap on concurrent connections when
// its MaxConnections is zero.
const DefaultMaxConnections = 8192

// Forward is one local port (or Unix socket, unixlisten.go) forwarded to a
// peer's service.
type Forward struct {
	Listen  string // "host:port", or "unix:/path" for a Unix socket
	Peer    string
	Service string
	// MaxConnections caps the forward's concurrent connections; 0 means
	// DefaultMaxConnections. A connection over the cap is accepted and
	// reset at once, so that the kernel's backlog does not fill. A udp
	// forward caps its concurrent flows with it.
	MaxConnections int
	// Protocol is ProtocolTCP ("" too) or ProtocolUDP: a local UDP socket
	// whose clients each get a flow (udp.go).
	Protocol string
	// IdleTimeout ends a udp flow after that long without a datagram;
	// 0 means DefaultFlowIdle.
	IdleTimeout time.Duration
}

// maxConnections is the forward's cap with the default applied.
func (fw *Forward) maxConnections() int {
	if fw.MaxConnections <= 0 {
		return DefaultMaxConnections
	}
	return fw.MaxConnections
}

// ForwardStats is a forward and its counters. Its MaxConnections is the
// cap in force, never zero.
type ForwardStats struct {
	Forward
	Active       int
	Total        uint64 // connections handled
	Refused      uint64 // connections reset because the forward was at its cap
	AcceptErrors uint64 // failed accepts, such as EMFILE when descriptors run out
	// Errors counts connections that got no stream to the service, by
	// ErrorKind.String() ("peer_unreachable", "access_denied", …); kinds
	// that never happened are absent.
	Errors map[string]uint64
}

// Forwarder runs the port forwards. Apply replaces the set; Close stops all.
type Forwarder struct {
	dialer      Dialer
	classify    Classifier // SetClassifier's
	log         *slog.Logger
	dialTimeout time.Duration
	listen      func(addr string) (net.Listener, error) // listenForward; tests wrap it

	mu       sync.Mutex // guards byListen and closed
	byListen map[string]*listener
	byUDP    map[string]*udpForward // the udp forwards (udp.go)
	closed   bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops and connection handlers
}

type listener struct {
	fwd    atomic.Pointer[Forward] // swapped by Apply when the target changes
	ln     net.Listener
	closed chan struct{} // closed by close, ends the accept loop's backoff
	active atomic.Int64
	total  atomic.Uint64
	// refused and acceptErrors are ForwardStats' counters of the same names.
	refused      atomic.Uint64
	acceptErrors atomic.Uint64
	fails        failCounts // connections that got no stream, by kind (forwarderr.go)
}

func newListener(ln net.Listener, fw Forward) *listener {
	l := &listener{ln: ln, closed: make(chan struct{})}
	l.fwd.Store(&fw)
	return l
}

// close closes the socket and stops the accept loop. The Forwarder calls it
// once per listener, under its mutex.
func (l *listener) close() {
	l.ln.Close()
	close(l.closed)
}

// NewForwarder returns a Forwarder with no forwards.
func NewForwarder(d Dialer, log *slog.Logger) *Forwarder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{dialer: d, log: log, dialTimeout: DefaultDialTimeout, listen: listenForward, byListen: make(map[string]*listener), byUDP: make(map[string]*udpForward)}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f
}

// Apply makes fwds the running set. New listeners are opened before anything
// is closed; if one fails, nothing changes and the error names it. A forward
// whose address stays keeps its socket, even if its target changes.
func (f *Forwarder) Apply(fwds []Forward) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("proxy: forwarder closed")
	}
	want := make(map[string]Forward, len(fwds))
	for i, fw := range fwds {
		if fw.Protocol == ProtocolUDP {
			continue // prepareUDP's
		}
		if _, dup := want[fw.Listen]; dup {
			return fmt.Errorf("proxy: forwards[%d] listen %q: used by an earlier forward", i, fw.Listen)
		}
		want[fw.Listen] = fw
	}
	var opened []*listener
	for i, fw := range fwds {
		if _, ok := f.byListen[fw.Listen]; ok || fw.Protocol == ProtocolUDP {
			continue
		}
		ln, err := f.listen(fw.Listen)
		if err != nil {
			for _, l := range opened {
				l.close()
			}
			return fmt.Errorf("proxy: forwards[%d] listen %q: %w", i, fw.Listen, err)
		}
		opened = append(opened, newListener(ln, fw))
	}
	commitUDP, err := f.prepareUDP(fwds)
	if err != nil {
		for _, l := range opened {
			l.close()
		}
		return err
	}
	commitUDP()
	for addr, l := range f.byListen {
		if fw, ok := want[addr]; ok {
			l.fwd.Store(&fw)
			continue
		}
		l.close()
		delete(f.byListen, addr)
	}
	for _, l := range opened {
		f.byListen[l.fwd.Load().Listen] = l
		f.wg.Add(1)
		go f.serve(l)
	}
	return nil
}

// listenForward opens a forward's listener: TCP, or a Unix socket for
// "unix:/path" (listenUnix).
func listenForward(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, unixPrefix); ok {
		return listenUnix(path)
	}
	lc := net.ListenConfig{KeepAlive: KeepAliveFor(addr)}
	return lc.Listen(context.Background(), ListenNetwork("tcp", addr), addr)
}

func (f *Forwarder) handle(fw Forward, c net.Conn) {
	local := NetConn(c)
	if local == nil {
		c.Close()
		return
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.dialTimeout)
	remote, err := f.dialer.DialService(ctx, fw.Peer, fw.Service)
	cancel()
	if err != nil {
		f.failed(fw, err) // before the client sees the reset, so it sees the count
		local.Abort()
		return
	}
	stop := context.AfterFunc(f.ctx, func() { local.Abort(); remote.Abort() })
	defer stop()
	refused := false
	ac := newAnswerConn(remote, f.classify, func(err error) { refused = true; f.failed(fw, err) })
	if _, _, err := Splice(local, ac); err != nil && !refused {
		f.log.Debug("forward: connection aborted", "peer", fw.Peer, "service", fw.Service, "err", err)
	}
}

// Stats returns the forwards with their counters, in no particular order.
func (f *Forwarder) Stats() []ForwardStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ForwardStats, 0, len(f.byListen))
	for _, l := range f.byListen {
		fw := *l.fwd.Load()
		fw.MaxConnections = fw.maxConnections()
		out = append(out, ForwardStats{Forward: fw, Active: int(l.active.Load()), Total: l.total.Load(),
			Refused: l.refused.Load(), AcceptErrors: l.acceptErrors.Load(), Errors: l.fails.snapshot()})
	}
	for _, u := range f.byUDP {
		fw := *u.fwd.Load()
		fw.MaxConnections = fw.maxConnections()
		out = append(out, ForwardStats{Forward: fw, Active: u.mux.active(), Total: u.mux.total.Load(),
			Refused: u.mux.droppedByReason()[DropFlowCap]})
	}
	return out
}

// Addr returns the bound address of the forward listening on listen, for
// tests that ask for port 0.
func (f *Forwarder) Addr(listen string) net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.byListen[listen]; ok {
		return l.ln.Addr()
	}
	if u, ok := f.byUDP[listen]; ok {
		return u.pc.LocalAddr()
	}
	return nil
}

// Close stops accepting. Connections in flight get until ctx ends to finish
// on their own; then they are aborted. Close waits for every goroutine.
func (f *Forwarder) Close(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	for addr, l := range f.byListen {
		l.close()
		delete(f.byListen, addr)
	}
	udp := f.byUDP
	f.byUDP = map[string]*udpForward{}
	f.mu.Unlock()
	for _, u := range udp {
		u.close()
	}
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.cancel()
		<-done
	}
	f.cancel()
	return nil
}
