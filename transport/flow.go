package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// A UDP flow is one local client address talking to a peer's udp service.
// It is set up by a stream of kind udp; its datagrams then ride QUIC
// DATAGRAM frames (RFC 9221) on the session's first connection, each
// prefixed by a flow header:
//
//	+---+----------------------+-----------------+
//	| A | flow id (31 bits)    | payload         |
//	+---+----------------------+-----------------+
//	  1 bit + 31 bits = FlowHeaderLen bytes, big-endian
//
// The opener of the flow picks its id (1..MaxFlowID, unique among the flows
// it opened on the session) and sends it in the request's flow-id extension
// field. A is 0 on datagrams the opener sends and 1 on datagrams the
// accepting side sends, so both ends can pick ids without coordination. A
// datagram for no known flow is dropped and counted.
//
// A datagram too large for one QUIC datagram (the limit follows the path
// MTU, about 1,200 bytes at worst) goes on the flow's stream instead, and so
// does every datagram where the carrier has no QUIC datagrams (the TCP
// and relayed carriers, a request without a flow id). On the stream each
// datagram is a frame:
//
//	+------------------+-------------------+
//	| length (2, BE)   | payload (length)  |
//	+------------------+-------------------+
//
// Either side ends the flow by closing the stream (FIN or reset); the other
// side's flow then ends too.

// Sizes of the flow wire format.
const (
	FlowHeaderLen   = 4
	MaxFlowID       = 1<<31 - 1
	flowFrameLenLen = 2
	// MaxFlowDatagram is the largest datagram a flow carries: what a
	// frame's length field holds, more than any UDP payload over IPv4.
	MaxFlowDatagram = 1<<16 - 1
	flowAccepterBit = 1 << 31
	// flowQueueLen and flowQueueBytes bound the datagrams that wait for
	// ReadDatagram; more are dropped (queue_full), as a full socket buffer
	// would. The byte bound is about a socket's default receive buffer: a
	// flow on a stream carries datagrams of up to 64 KiB, and 256 of those
	// would be 16 MiB a flow, 16 GiB over a peer's MaxFlowsPerPeer.
	flowQueueLen   = 256
	flowQueueBytes = 256 << 10
)

// Reasons a flow dropped a datagram, as FlowStats.Dropped keys them.
const (
	DropQueueFull = "queue_full" // the reader was too slow
	DropTooLarge  = "too_large"  // over MaxFlowDatagram
)

// ErrFlowClosed reports use of a flow that has ended.
var ErrFlowClosed = errors.New("transport: flow closed")

// AppendFlowHeader appends the header of a datagram of flow id to b;
// fromAccepter says which side sends it.
func AppendFlowHeader(b []byte, id uint32, fromAccepter bool) []byte {
	v := id & MaxFlowID
	if fromAccepter {
		v |= flowAccepterBit
	}
	return binary.BigEndian.AppendUint32(b, v)
}

// ParseFlowHeader splits a received QUIC datagram into its flow id, the
// sending side and the payload.
func ParseFlowHeader(b []byte) (id uint32, fromAccepter bool, payload []byte, err error) {
	if len(b) < FlowHeaderLen {
		return 0, false, nil, fmt.Errorf("%w: datagram of %d bytes, shorter than its %d-byte flow header", ErrBadHeader, len(b), FlowHeaderLen)
	}
	v := binary.BigEndian.Uint32(b)
	id = v & MaxFlowID
	if id == 0 {
		return 0, false, nil, fmt.Errorf("%w: datagram for flow 0", ErrBadHeader)
	}
	return id, v&flowAccepterBit != 0, b[FlowHeaderLen:], nil
}

// Flow is one UDP flow: datagrams both ways, with no ordering or delivery
// promise, and counters. It is safe for concurrent use; one goroutine at a
// time calls ReadDatagram.
type Flow struct {
	rw       io.ReadWriteCloser // the flow's stream
	st       *Stream            // the same, when it is a session's stream
	sess     *Session           // nil: every datagram goes on the stream
	id       uint32
	accepter bool

	in     chan []byte
	queued atomic.Int64 // bytes in in
	done   chan struct{}
	once   sync.Once
	errMu  sync.Mutex
	err    error
	wmu    sync.Mutex // serialises frames on the stream
	active atomic.Int64
	idle   atomic.Int64 // the idle timeout, in nanoseconds; 0 for none

	sent, received, framed atomic.Uint64
	queueFull, tooLarge    atomic.Uint64

	dlMu    sync.Mutex    // guards deadline and dlTimer
	expired chan struct{} // closed when the read deadline passes; nil for none
	dlTimer *time.Timer
}

// FlowStats are a flow's counters.
type FlowStats struct {
	ID         uint32 // 0 for a flow without QUIC datagrams
	Datagrams  bool   // datagrams ride QUIC DATAGRAM frames where they fit
	Sent       uint64 // datagrams sent
	Received   uint64 // datagrams received
	Framed     uint64 // of those sent, the ones carried on the stream
	Dropped    map[string]uint64
	LastActive time.Time
}

func newFlow(id uint32, accepter bool, sess *Session) *Flow {
	f := &Flow{id: id, accepter: accepter, sess: sess, in: make(chan []byte, flowQueueLen), done: make(chan struct{})}
	f.touch()
	return f
}

// start attaches the flow's stream and reads its frames until it ends.
func (f *Flow) start(rw io.ReadWriteCloser) {
	f.rw = rw
	go f.readFrames()
}

// Stream returns the flow's stream when it is a session's.
func (f *Flow) Stream() *Stream { return f.st }

func (f *Flow) readFrames() {
	var hdr [flowFrameLenLen]byte
	for {
		if _, err := io.ReadFull(f.rw, hdr[:]); err != nil {
			f.end(err)
			return
		}
		b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(f.rw, b); err != nil {
			f.end(err)
			return
		}
		f.deliver(b)
	}
}

// deliver queues a received datagram for ReadDatagram, or drops it when
// the queue is full.
func (f *Flow) deliver(b []byte) {
	// Counted before the reader can have it, so that Stats after a read
	// includes it; taken back if the queue is full.
	f.received.Add(1)
	if f.queued.Add(int64(len(b))) <= flowQueueBytes {
		select {
		case f.in <- b:
			f.touch()
			return
		default:
		}
	}
	f.queued.Add(-int64(len(b)))
	f.received.Add(^uint64(0))
	f.queueFull.Add(1)
}

// take takes d, received from the queue, off its byte count.
func (f *Flow) take(d []byte) []byte {
	f.queued.Add(-int64(len(d)))
	return d
}

// ReadDatagram waits for the next datagram and copies it into b; a longer
// datagram is cut to len(b), as a UDP socket does. It returns io.EOF once
// the flow has ended and every queued datagram was read, and
// os.ErrDeadlineExceeded after the read deadline.
func (f *Flow) ReadDatagram(b []byte) (int, error) {
	d, err := f.NextDatagram()
	return copy(b, d), err
}

// NextDatagram is ReadDatagram that hands over the datagram instead of
// copying it: the caller owns it. A reader that waits with it holds no
// buffer of its own (65,535 bytes for ReadDatagram's, per flow).
func (f *Flow) NextDatagram() ([]byte, error) {
	select {
	case d := <-f.in:
		return f.take(d), nil
	default:
	}
	f.dlMu.Lock()
	expired := f.expired
	f.dlMu.Unlock()
	select {
	case d := <-f.in:
		return f.take(d), nil
	case <-expired:
		return nil, os.ErrDeadlineExceeded
	case <-f.done:
		select {
		case d := <-f.in:
			return f.take(d), nil
		default:
		}
		return nil, f.Err()
	}
}

// WriteDatagram sends one datagram: in a QUIC datagram when the session has
// them and it fits, else as a frame on the stream. It blocks only while the
// carrier is backed up.
func (f *Flow) WriteDatagram(p []byte) error {
	select {
	case <-f.done:
		return f.Err()
	default:
	}
	if len(p) > MaxFlowDatagram {
		f.tooLarge.Add(1)
		return fmt.Errorf("transport: datagram of %d bytes, over the flow limit of %d", len(p), MaxFlowDatagram)
	}
	f.touch()
	if f.sess != nil && f.id != 0 {
		q := f.sess.lanes0QUIC()
		b := make([]byte, 0, FlowHeaderLen+len(p))
		b = append(AppendFlowHeader(b, f.id, f.accepter), p...)
		err := q.SendDatagram(b)
		if err == nil {
			f.sent.Add(1)
			return nil
		}
		if _, big := errors.AsType[*quic.DatagramTooLargeError](err); !big {
			return f.sess.errOr(err)
		}
	}
	b := make([]byte, 0, flowFrameLenLen+len(p))
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	b = append(b, p...)
	f.wmu.Lock()
	_, err := f.rw.Write(b)
	f.wmu.Unlock()
	if err != nil {
		return err
	}
	f.sent.Add(1)
	f.framed.Add(1)
	return nil
}

// SetReadDeadline makes ReadDatagram fail with os.ErrDeadlineExceeded
// after t; the zero time means no deadline.
func (f *Flow) SetReadDeadline(t time.Time) error {
	f.dlMu.Lock()
	defer f.dlMu.Unlock()
	if f.dlTimer != nil {
		f.dlTimer.Stop()
		f.dlTimer = nil
	}
	if t.IsZero() {
		f.expired = nil
		return nil
	}
	ch := make(chan struct{})
	f.expired = ch
	if d := time.Until(t); d > 0 {
		f.dlTimer = time.AfterFunc(d, func() { close(ch) })
	} else {
		close(ch)
	}
	return nil
}

// SetIdleTimeout ends the flow after d without a datagram either way; 0
// (the default) never does. Call it once, before use.
func (f *Flow) SetIdleTimeout(d time.Duration) {
	if d <= 0 {
		return
	}
	f.idle.Store(int64(d))
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		last := time.Unix(0, f.active.Load())
		if left := time.Until(last.Add(d)); left > 0 {
			t.Reset(left)
			return
		}
		f.Close()
	})
	go func() {
		<-f.done
		t.Stop()
	}()
}

func (f *Flow) touch() { f.active.Store(time.Now().UnixNano()) }

// Done is closed when the flow has ended.
func (f *Flow) Done() <-chan struct{} { return f.done }

// Err is why the flow ended: io.EOF when the peer closed it, ErrFlowClosed
// when this side did.
func (f *Flow) Err() error {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return f.err
}

// Close ends the flow: the stream is closed, and the peer's flow ends too.
func (f *Flow) Close() error {
	f.end(ErrFlowClosed)
	return nil
}

func (f *Flow) end(err error) {
	f.once.Do(func() {
		if errors.Is(err, io.EOF) {
			err = io.EOF
		}
		f.errMu.Lock()
		f.err = err
		f.errMu.Unlock()
		if f.sess != nil && f.id != 0 {
			f.sess.flows.remove(f)
		}
		if f.rw != nil {
			f.rw.Close()
		}
		close(f.done)
	})
}

// Stats returns the flow's counters.
func (f *Flow) Stats() FlowStats {
	st := FlowStats{
		ID: f.id, Datagrams: f.sess != nil && f.id != 0,
		Sent: f.sent.Load(), Received: f.received.Load(), Framed: f.framed.Load(),
		LastActive: time.Unix(0, f.active.Load()),
		Dropped:    map[string]uint64{},
	}
	if n := f.queueFull.Load(); n > 0 {
		st.Dropped[DropQueueFull] = n
	}
	if n := f.tooLarge.Load(); n > 0 {
		st.Dropped[DropTooLarge] = n
	}
	return st
}

// flowTable is a session's flows with QUIC datagrams, by id: the ones this
// side opened (mine) and the ones the peer opened (theirs).
type flowTable struct {
	mu      sync.Mutex
	mine    map[uint32]*Flow
	theirs  map[uint32]*Flow
	next    uint32
	reading bool // the datagram loop runs
	noFlow  atomic.Uint64
}

// maxFlowsPerSession bounds the flows with datagrams one side holds on a
// session; past it, new flows carry their datagrams on the stream.
const maxFlowsPerSession = 1 << 16

func (t *flowTable) add(f *Flow) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := &t.mine
	if f.accepter {
		m = &t.theirs
	}
	if *m == nil {
		*m = make(map[uint32]*Flow)
	}
	if len(*m) >= maxFlowsPerSession {
		return false
	}
	if !f.accepter {
		for {
			t.next = t.next%MaxFlowID + 1
			if (*m)[t.next] == nil {
				break
			}
		}
		f.id = t.next
	} else if (*m)[f.id] != nil {
		return false
	}
	(*m)[f.id] = f
	return true
}

func (t *flowTable) remove(f *Flow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.mine
	if f.accepter {
		m = t.theirs
	}
	if m[f.id] == f {
		delete(m, f.id)
	}
}

// lanes0QUIC is the session's first QUIC connection, where datagrams go.
func (s *Session) lanes0QUIC() *quic.Conn {
	s.lanesMu.Lock()
	defer s.lanesMu.Unlock()
	return s.lanes[0].qconn
}

// datagrams reports whether the session can carry QUIC datagrams.
func (s *Session) datagrams() bool {
	q := s.lanes0QUIC()
	return q != nil && q.ConnectionState().SupportsDatagrams.Remote
}

// readDatagrams hands the session's QUIC datagrams to their flows until
// the first connection ends. It starts with the session's first flow.
func (s *Session) readDatagrams(q *quic.Conn) {
	for {
		b, err := q.ReceiveDatagram(q.Context())
		if err != nil {
			return
		}
		id, fromAccepter, payload, err := ParseFlowHeader(b)
		if err != nil {
			s.flows.noFlow.Add(1)
			continue
		}
		s.flows.mu.Lock()
		var f *Flow
		if fromAccepter {
			f = s.flows.mine[id] // the peer accepted a flow this side opened
		} else {
			f = s.flows.theirs[id]
		}
		s.flows.mu.Unlock()
		if f == nil {
			s.flows.noFlow.Add(1)
			continue
		}
		f.deliver(payload)
	}
}

// register adds f to the session's flows and starts the datagram loop if
// it is the first; false when the session holds too many flows already.
func (s *Session) registerFlow(f *Flow) bool {
	if !s.flows.add(f) {
		return false
	}
	s.flows.mu.Lock()
	start := !s.flows.reading
	s.flows.reading = true
	s.flows.mu.Unlock()
	if start {
		go s.readDatagrams(s.lanes0QUIC())
	}
	return true
}

// OpenFlow opens a udp flow to service and waits for the answer; a refusal
// is a *StatusError. Its datagrams ride QUIC datagrams where the session
// has them.
func (s *Session) OpenFlow(ctx context.Context, service string, headerTimeout time.Duration) (*Flow, error) {
	f := newFlow(0, false, s)
	if !s.datagrams() || !s.registerFlow(f) {
		f.sess = nil
	}
	req := Request{Kind: KindUDP, Service: service, FlowID: f.id}
	st, err := s.OpenStream(ctx, req, headerTimeout)
	if err != nil {
		if f.sess != nil {
			s.flows.remove(f)
		}
		return nil, err
	}
	st.flow = f
	f.st = st
	f.start(st)
	return f, nil
}

// AcceptFlow makes the flow of an accepted udp stream whose request is req;
// call it before answering OK, so that no datagram finds the flow missing.
// A flow id the session already has is a bad request.
func (st *Stream) AcceptFlow(req Request) (*Flow, error) {
	if req.Kind != KindUDP {
		return nil, fmt.Errorf("%w: a %s stream is no udp flow", ErrBadHeader, req.Kind)
	}
	f := newFlow(req.FlowID, true, st.sess)
	if req.FlowID == 0 || !st.sess.datagrams() {
		f.sess, f.id = nil, 0
	} else if !st.sess.registerFlow(f) {
		return nil, fmt.Errorf("%w: flow id %d is in use or the session holds %d flows", ErrBadHeader, req.FlowID, maxFlowsPerSession)
	}
	st.flow = f
	f.st = st
	f.start(st)
	return f, nil
}

// Flow returns the flow a stream carries, or nil.
func (st *Stream) Flow() *Flow { return st.flow }

// DroppedDatagrams counts the session's QUIC datagrams that named no flow.
func (s *Session) DroppedDatagrams() uint64 { return s.flows.noFlow.Load() }

// Dropped counts the datagrams the flow dropped, by reason (DropQueueFull,
// DropTooLarge).
func (f *Flow) Dropped() map[string]uint64 { return f.Stats().Dropped }
