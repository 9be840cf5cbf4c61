package p2pd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/p2pd/p2pd/identity"
)

// FlowAddr names one UDP flow a peer opened to a ListenPacket service:
// ReadFrom returns it and WriteTo takes it. One peer may hold several flows
// at once (a forward opens one per local client address), as one host may
// send from several UDP ports.
type FlowAddr struct {
	Peer string // the peer's ID
	Flow uint64 // this flow's number, unique within the listener
}

func (a FlowAddr) Network() string { return "p2pd" }
func (a FlowAddr) String() string  { return fmt.Sprintf("%s#%d", a.Peer, a.Flow) }

// packetQueue bounds the datagrams queued for ReadFrom (from every flow)
// and, per flow, those queued by WriteTo; packetQueueBytes bounds the bytes
// queued for ReadFrom, which the peers fill. A full ReadFrom queue drops
// what comes next, as a UDP socket's full receive buffer does; WriteTo
// waits.
const (
	packetQueue      = 256
	packetQueueBytes = 1 << 20
)

// maxDatagram is the largest datagram a flow carries.
const maxDatagram = 65535

// errFlowEnded reports a WriteTo to a flow that has ended (or never was).
var errFlowEnded = errors.New("p2pd: no such flow: it ended, or it was never opened")

// ListenPacket serves the udp service to the peers named in allow ([[peers]]
// names, or "*" for every trusted peer) from this program, as Listen does
// for tcp: every flow a peer opens (DialUDP, or a udp forward) delivers its
// datagrams to ReadFrom with the flow's FlowAddr, and WriteTo with that
// address answers on the flow. A flow ends after the peer closes it or after
// a minute without datagrams (node.DefaultFlowIdle); WriteTo to it then
// fails. Closing the PacketConn removes the service and ends its flows. A
// service name already served (Listen, ListenPacket or the config) is an
// error, as is an empty allow list.
func (s *Server) ListenPacket(service string, allow ...string) (net.PacketConn, error) {
	l := &packetListener{in: make(chan datagram, packetQueue), flows: make(map[uint64]*inprocFlow)}
	l.rd.init()
	l.wd.init()
	if err := s.register(&l.inproc, "ListenPacket", service, "udp", allow, l); err != nil {
		return nil, err
	}
	return l, nil
}

type datagram struct {
	from FlowAddr
	b    []byte
}

// packetListener is a udp in-process service's net.PacketConn.
type packetListener struct {
	inproc
	in     chan datagram // from every flow to ReadFrom
	queued atomic.Int64  // bytes in in
	rd, wd deadline

	mu    sync.Mutex // guards the fields below
	flows map[uint64]*inprocFlow
	next  uint64
}

// connect is the node's side of a new flow from peer.
func (l *packetListener) connect(_ context.Context, peer identity.PeerID) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return nil, fmt.Errorf("p2pd: in-process service %q: %w", l.name, syscall.ECONNREFUSED)
	default:
	}
	l.next++
	f := &inprocFlow{l: l, addr: FlowAddr{Peer: peer.String(), Flow: l.next}, out: make(chan []byte, packetQueue), done: make(chan struct{})}
	l.flows[f.addr.Flow] = f
	return f, nil
}

func (l *packetListener) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-l.in:
		l.queued.Add(-int64(len(d.b)))
		return copy(b, d.b), d.from, nil
	case <-l.done:
		return 0, nil, net.ErrClosed
	case <-l.rd.wait():
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (l *packetListener) WriteTo(b []byte, to net.Addr) (int, error) {
	var a FlowAddr
	switch v := to.(type) {
	case FlowAddr:
		a = v
	case *FlowAddr:
		a = *v
	default:
		return 0, fmt.Errorf("p2pd: WriteTo %v: not a FlowAddr from ReadFrom", to)
	}
	if len(b) > maxDatagram {
		return 0, fmt.Errorf("p2pd: WriteTo %v: a datagram of %d bytes; at most %d fit", a, len(b), maxDatagram)
	}
	l.mu.Lock()
	f := l.flows[a.Flow]
	l.mu.Unlock()
	if f == nil || f.addr != a {
		return 0, fmt.Errorf("p2pd: WriteTo %v: %w", a, errFlowEnded)
	}
	select {
	case f.out <- append([]byte(nil), b...):
		return len(b), nil
	case <-f.done:
		return 0, fmt.Errorf("p2pd: WriteTo %v: %w", a, errFlowEnded)
	case <-l.done:
		return 0, net.ErrClosed
	case <-l.wd.wait():
		return 0, os.ErrDeadlineExceeded
	}
}

// Close removes the service from the node and ends its flows.
func (l *packetListener) Close() error { return l.unregister(l) }

func (l *packetListener) LocalAddr() net.Addr { return l.addr }

func (l *packetListener) SetDeadline(t time.Time) error {
	l.rd.set(t)
	l.wd.set(t)
	return nil
}
func (l *packetListener) SetReadDeadline(t time.Time) error  { l.rd.set(t); return nil }
func (l *packetListener) SetWriteDeadline(t time.Time) error { l.wd.set(t); return nil }

// inprocFlow is the node's end of one flow: it writes the peer's datagrams
// to the listener's ReadFrom queue and reads those the program wrote to
// the flow.
type inprocFlow struct {
	l    *packetListener
	addr FlowAddr
	out  chan []byte // from WriteTo
	once sync.Once
	done chan struct{}
}

// Write queues one datagram from the peer for ReadFrom, or drops it when
// the queue is full (packetQueue datagrams or packetQueueBytes).
func (f *inprocFlow) Write(b []byte) (int, error) {
	select {
	case <-f.done:
		return 0, net.ErrClosed
	case <-f.l.done:
		return 0, net.ErrClosed
	default:
	}
	l := f.l
	if l.queued.Add(int64(len(b))) > packetQueueBytes {
		l.queued.Add(-int64(len(b)))
		return len(b), nil // dropped, as by a full socket buffer
	}
	select {
	case l.in <- datagram{from: f.addr, b: append([]byte(nil), b...)}:
	default: // dropped
		l.queued.Add(-int64(len(b)))
	}
	return len(b), nil
}

// Read returns the next datagram the program wrote to this flow.
func (f *inprocFlow) Read(b []byte) (int, error) {
	select {
	case d := <-f.out:
		return copy(b, d), nil
	case <-f.done:
		return 0, net.ErrClosed
	case <-f.l.done:
		return 0, net.ErrClosed
	}
}

func (f *inprocFlow) Close() error {
	f.once.Do(func() {
		close(f.done)
		f.l.mu.Lock()
		delete(f.l.flows, f.addr.Flow)
		f.l.mu.Unlock()
	})
	return nil
}

func (f *inprocFlow) LocalAddr() net.Addr                { return f.l.addr }
func (f *inprocFlow) RemoteAddr() net.Addr               { return f.addr }
func (f *inprocFlow) SetDeadline(t time.Time) error      { return errNoDeadline }
func (f *inprocFlow) SetReadDeadline(t time.Time) error  { return errNoDeadline }
func (f *inprocFlow) SetWriteDeadline(t time.Time) error { return errNoDeadline }

// deadline is a settable deadline for calls that may already be waiting:
// the channel of wait is closed while the deadline is past.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

func (d *deadline) init() { d.ch = make(chan struct{}) }

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// set moves the deadline to t; the zero t means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer has fired: wait until its func has closed ch
	}
	d.timer = nil
	expired := false
	select {
	case <-d.ch:
		expired = true
	default:
	}
	if expired && (t.IsZero() || time.Until(t) > 0) {
		d.ch = make(chan struct{}) // waiters from now on wait again
	}
	switch {
	case t.IsZero():
	case time.Until(t) > 0:
		ch := d.ch
		d.timer = time.AfterFunc(time.Until(t), func() { close(ch) })
	case !expired:
		close(d.ch)
	}
}
