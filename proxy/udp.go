package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// UDP: a udp forward's socket, or a SOCKS5 UDP association's, carries the
// datagrams of many local clients. Each client address (and, for SOCKS5,
// each destination) is one flow to the peer's service, dialed on its first
// datagram and ended after an idle timeout; its datagrams wait in a short
// queue while the flow is dialed. flowMux does this for both.

// Flow is a UDP flow to a peer's udp service. The node implements it.
type Flow interface {
	// ReadDatagram waits for the next datagram from the service.
	ReadDatagram(b []byte) (int, error)
	WriteDatagram(b []byte) error
	Close() error
	// Dropped counts the datagrams the flow itself dropped, by reason.
	Dropped() map[string]uint64
}

// datagramTaker is a Flow that can hand over each datagram it received
// (transport's flows can): then a flow waiting for one holds no buffer. A
// client that sends each query from a new port (dig, most resolvers) makes
// a flow per query, each kept for the idle timeout, so a 65,535-byte read
// buffer per flow added up to hundreds of MiB.
type datagramTaker interface {
	NextDatagram() ([]byte, error)
}

// FlowDialer opens UDP flows. The node implements it.
type FlowDialer interface {
	// DialFlow returns once the service has answered; a refusal is the
	// error.
	DialFlow(ctx context.Context, peer, service string) (Flow, error)
}

// DefaultFlowIdle ends a local UDP flow after that long without a datagram
// either way, when its forward sets no idle timeout.
const DefaultFlowIdle = 60 * time.Second

// Protocols of a Forward.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// Datagram drop reasons the proxy adds to a flow's own (FlowStats.Dropped).
const (
	DropDialFailed  = "dial_failed"  // queued while the flow's dial failed
	DropSendQueue   = "send_queue"   // the flow's send queue was full
	DropFlowCap     = "flow_cap"     // a new client over the listener's cap
	DropNotP2P      = "not_p2p"      // SOCKS5: a destination outside .p2p
	DropBadHeader   = "bad_header"   // SOCKS5: a malformed UDP request header
	DropFragmented  = "fragmented"   // SOCKS5: fragments are not reassembled
	DropForeign     = "foreign_addr" // SOCKS5: from an address not the client's
	DropReplyFailed = "reply_failed" // a reply the socket would not send to the client (SOCKS5: over 65,507 bytes with its header)
)

const (
	maxUDPPayload = 65535
	// flowSendQueue and flowSendQueueBytes bound the datagrams that wait
	// for a flow's dial or its carrier; more are dropped.
	flowSendQueue      = 128
	flowSendQueueBytes = 1 << 20
	// maxUDPQueued bounds the bytes waiting in every flow's send queue,
	// all forwards and SOCKS5 associations together: without it, flows
	// whose dials hang could hold 1 MiB each, 8,192 flows a forward.
	maxUDPQueued = 64 << 20
	minIdleSweep = 50 * time.Millisecond
)

// FlowStats is one local UDP flow and its counters.
type FlowStats struct {
	Listener   string // the forward's listen address, or "socks5 " and the association's address
	Client     string // the local client's address
	Peer       string
	Service    string
	Sent       uint64 // datagrams sent to the service
	Received   uint64 // datagrams received from it
	Dropped    map[string]uint64
	Since      time.Time
	LastActive time.Time
}

// flowKey names a flow of a mux: the client's address and, on a SOCKS5
// association, the destination as the client wrote it.
type flowKey struct {
	client netip.AddrPort
	dest   string
}

// flowMux runs the flows of one UDP socket.
type flowMux struct {
	pc          *net.UDPConn
	label       string
	dialer      FlowDialer
	dialTimeout time.Duration
	idle        atomic.Int64 // a time.Duration; a reload may change it
	max         int
	log         *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex // guards flows
	flows map[flowKey]*muxFlow

	total   atomic.Uint64 // flows made
	dropped sync.Map      // reason → *atomic.Uint64: drops no flow owns

	// lastCapLog and lastRefusedLog space out the lines a client can set
	// off with every datagram (over the flow cap; a flow whose dial
	// failed, which the next datagram dials again): one per failLogEvery
	// each, the drop counters count them all.
	lastCapLog, lastRefusedLog atomic.Int64
}

// logDue takes the log budget whose last line was at *last.
func logDue(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(failLogEvery) && last.CompareAndSwap(prev, now)
}

type muxFlow struct {
	key           flowKey
	peer, service string
	prefix        []byte // put before each reply to the client (SOCKS5's UDP header)
	out           chan []byte
	done          chan struct{}
	once          sync.Once
	since         time.Time
	last          atomic.Int64
	flow          atomic.Pointer[Flow]

	sent, received, dialFailed, sendQueue, replyFailed atomic.Uint64

	qmu    sync.Mutex // guards queued and ended against enqueue
	queued int64      // bytes in out
	ended  bool       // out takes no more
}

// udpQueued is the bytes in every flow's out, against maxUDPQueued;
// lastQueuedLog spaces out the warning when it is full.
var udpQueued, lastQueuedLog atomic.Int64

// enqueue puts a copy of b on the flow's send queue, or reports that the
// flow's queue or all flows' queues are full, or the flow ended.
func (mf *muxFlow) enqueue(b []byte) (ok, globalFull bool) {
	n := int64(len(b))
	mf.qmu.Lock()
	defer mf.qmu.Unlock()
	if mf.ended || mf.queued+n > flowSendQueueBytes {
		return false, false
	}
	if udpQueued.Add(n) > maxUDPQueued {
		udpQueued.Add(-n)
		return false, true
	}
	select {
	case mf.out <- append([]byte(nil), b...):
		mf.queued += n
		return true, false
	default:
		udpQueued.Add(-n)
		return false, false
	}
}

// dequeued takes d, received from out, off the counts.
func (mf *muxFlow) dequeued(d []byte) {
	n := int64(len(d))
	mf.qmu.Lock()
	mf.queued -= n
	mf.qmu.Unlock()
	udpQueued.Add(-n)
}

// discard closes the send queue to new datagrams and drops what it holds,
// returning how many.
func (mf *muxFlow) discard() int {
	mf.qmu.Lock()
	defer mf.qmu.Unlock()
	mf.ended = true
	for k := 0; ; k++ {
		select {
		case d := <-mf.out:
			mf.queued -= int64(len(d))
			udpQueued.Add(-int64(len(d)))
		default:
			return k
		}
	}
}

func newFlowMux(ctx context.Context, pc *net.UDPConn, label string, d FlowDialer, dialTimeout, idle time.Duration, max int, log *slog.Logger) *flowMux {
	m := &flowMux{pc: pc, label: label, dialer: d, dialTimeout: dialTimeout, max: max, log: log, flows: make(map[flowKey]*muxFlow)}
	m.setIdle(idle)
	m.ctx, m.cancel = context.WithCancel(ctx)
	m.wg.Add(1)
	go m.sweep()
	return m
}

// setIdle sets the idle timeout; 0 means DefaultFlowIdle.
func (m *flowMux) setIdle(d time.Duration) { m.idle.Store(int64(orDefault(d, DefaultFlowIdle))) }

// drop counts a datagram no flow owns.
func (m *flowMux) drop(reason string) {
	c, _ := m.dropped.LoadOrStore(reason, new(atomic.Uint64))
	c.(*atomic.Uint64).Add(1)
}

// route sends b from a client to the flow of key. A new flow takes its
// peer, service and reply prefix from dest, and is dialed; dest's error
// drops b.
func (m *flowMux) route(key flowKey, b []byte, dest func() (peer, service string, prefix []byte, err error)) {
	m.mu.Lock()
	mf := m.flows[key]
	if mf == nil {
		peer, service, prefix, err := dest()
		if err != nil {
			m.mu.Unlock()
			return
		}
		if m.ctx.Err() != nil {
			m.mu.Unlock()
			return
		}
		if len(m.flows) >= m.max {
			m.mu.Unlock()
			m.drop(DropFlowCap)
			if logDue(&m.lastCapLog) {
				m.log.Warn("udp: at the flow cap; datagrams from a new client are dropped", "listener", m.label, "client", key.client.String(), "max_connections", m.max)
			}
			return
		}
		mf = &muxFlow{key: key, peer: peer, service: service, prefix: prefix, out: make(chan []byte, flowSendQueue), done: make(chan struct{}), since: time.Now()}
		mf.touch()
		m.flows[key] = mf
		m.total.Add(1)
		m.wg.Add(1)
		go m.run(mf)
	}
	m.mu.Unlock()
	ok, globalFull := mf.enqueue(b)
	if ok {
		return
	}
	mf.sendQueue.Add(1)
	if globalFull && logDue(&lastQueuedLog) {
		m.log.Warn("udp: datagrams waiting for their flows reached the limit; dropping new ones until the flows catch up",
			"listener", m.label, "limit_bytes", maxUDPQueued)
	}
}

func (mf *muxFlow) touch() { mf.last.Store(time.Now().UnixNano()) }

// end ends the flow; the mux forgets it at once, so that the client's next
// datagram makes a new one.
func (m *flowMux) end(mf *muxFlow) {
	mf.once.Do(func() {
		m.mu.Lock()
		if m.flows[mf.key] == mf {
			delete(m.flows, mf.key)
		}
		m.mu.Unlock()
		close(mf.done)
		mf.discard()
	})
}

// run dials the flow, then sends its queued datagrams until it ends.
func (m *flowMux) run(mf *muxFlow) {
	defer m.wg.Done()
	defer m.end(mf)
	ctx, cancel := context.WithTimeout(m.ctx, m.dialTimeout)
	fl, err := m.dialer.DialFlow(ctx, mf.peer, mf.service)
	cancel()
	if err != nil {
		mf.dialFailed.Add(uint64(mf.discard()))
		if logDue(&m.lastRefusedLog) {
			m.log.Info("udp: flow refused", "listener", m.label, "client", mf.key.client.String(), "peer", mf.peer, "service", mf.service, "err", err)
		}
		return
	}
	mf.flow.Store(&fl)
	defer fl.Close()
	m.wg.Add(1)
	go m.receive(mf, fl)
	for {
		select {
		case d := <-mf.out:
			mf.dequeued(d)
			if err := fl.WriteDatagram(d); err != nil {
				return
			}
			mf.sent.Add(1)
			mf.touch()
		case <-mf.done:
			return
		case <-m.ctx.Done():
			return
		}
	}
}

// receive hands the service's datagrams to the client until the flow ends.
func (m *flowMux) receive(mf *muxFlow, fl Flow) {
	defer m.wg.Done()
	defer m.end(mf)
	var next func() ([]byte, error)
	if dt, ok := fl.(datagramTaker); ok {
		next = func() ([]byte, error) {
			d, err := dt.NextDatagram()
			if err != nil || len(mf.prefix) == 0 {
				return d, err
			}
			return append(slices.Clip(mf.prefix), d...), nil
		}
	} else {
		buf := make([]byte, len(mf.prefix)+maxUDPPayload)
		copy(buf, mf.prefix)
		next = func() ([]byte, error) {
			n, err := fl.ReadDatagram(buf[len(mf.prefix):])
			return buf[:len(mf.prefix)+n], err
		}
	}
	for {
		d, err := next()
		if err != nil {
			return
		}
		mf.received.Add(1)
		mf.touch()
		if _, err := m.pc.WriteToUDPAddrPort(d, mf.key.client); err != nil && !errors.Is(err, net.ErrClosed) {
			mf.replyFailed.Add(1)
		}
	}
}

// sweep ends flows that have been idle for m.idle.
func (m *flowMux) sweep() {
	defer m.wg.Done()
	t := time.NewTicker(max(time.Duration(m.idle.Load())/4, minIdleSweep))
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			limit := time.Duration(m.idle.Load())
			m.mu.Lock()
			var idle []*muxFlow
			for _, mf := range m.flows {
				if now.Sub(time.Unix(0, mf.last.Load())) >= limit {
					idle = append(idle, mf)
				}
			}
			m.mu.Unlock()
			for _, mf := range idle {
				m.end(mf)
			}
		}
	}
}

// stats lists the live flows.
func (m *flowMux) stats() []FlowStats {
	m.mu.Lock()
	flows := slices.Collect(maps.Values(m.flows))
	m.mu.Unlock()
	out := make([]FlowStats, 0, len(flows))
	for _, mf := range flows {
		st := FlowStats{Listener: m.label, Client: mf.key.client.String(), Peer: mf.peer, Service: mf.service,
			Sent: mf.sent.Load(), Received: mf.received.Load(), Dropped: map[string]uint64{},
			Since: mf.since, LastActive: time.Unix(0, mf.last.Load())}
		if fl := mf.flow.Load(); fl != nil {
			for k, v := range (*fl).Dropped() {
				st.Dropped[k] = v
			}
		}
		for k, c := range map[string]*atomic.Uint64{DropDialFailed: &mf.dialFailed, DropSendQueue: &mf.sendQueue, DropReplyFailed: &mf.replyFailed} {
			if v := c.Load(); v > 0 {
				st.Dropped[k] = v
			}
		}
		out = append(out, st)
	}
	return out
}

// droppedByReason is the mux's own drops (no flow owned the datagram).
func (m *flowMux) droppedByReason() map[string]uint64 {
	out := map[string]uint64{}
	m.dropped.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// active is the number of live flows.
func (m *flowMux) active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.flows)
}

// close ends every flow and waits for their goroutines; the caller closes
// the socket first so that no read loop makes new flows.
func (m *flowMux) close() {
	m.cancel()
	m.mu.Lock()
	flows := slices.Collect(maps.Values(m.flows))
	m.mu.Unlock()
	for _, mf := range flows {
		m.end(mf)
		if fl := mf.flow.Load(); fl != nil {
			(*fl).Close() // wakes receive
		}
	}
	m.wg.Wait()
}

// udpForward is a forward with protocol udp: one socket, a flow per client
// address.
type udpForward struct {
	fwd  atomic.Pointer[Forward]
	pc   *net.UDPConn
	mux  *flowMux
	done chan struct{} // closed when the read loop has ended
}

// listenUDPForward binds a udp forward's socket.
func listenUDPForward(addr string) (*net.UDPConn, error) {
	network := ListenNetwork("udp", addr)
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, err
	}
	return net.ListenUDP(network, ua)
}

// serve reads client datagrams until the socket is closed.
func (u *udpForward) serve() {
	defer close(u.done)
	buf := make([]byte, maxUDPPayload)
	for {
		n, addr, err := u.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. a truncated or refused datagram: the next one may be fine
		}
		u.mux.route(flowKey{client: addr}, buf[:n], func() (string, string, []byte, error) {
			fw := u.fwd.Load()
			return fw.Peer, fw.Service, nil, nil
		})
	}
}

func (u *udpForward) close() {
	u.pc.Close()
	<-u.done
	u.mux.close()
}

// prepareUDP opens the sockets of the udp forwards in fwds that do not run
// yet; commit makes fwds the running udp set (closing the dropped ones). On
// error nothing is left open. The caller holds f.mu.
func (f *Forwarder) prepareUDP(fwds []Forward) (commit func(), err error) {
	want := map[string]Forward{}
	var opened []*udpForward
	abort := func() {
		for _, u := range opened {
			u.pc.Close()
			u.mux.close()
		}
	}
	fd, canFlow := f.dialer.(FlowDialer)
	for i, fw := range fwds {
		if fw.Protocol != ProtocolUDP {
			continue
		}
		if !canFlow {
			abort()
			return nil, fmt.Errorf("proxy: forwards[%d]: this node carries no udp flows", i)
		}
		if _, dup := want[fw.Listen]; dup {
			abort()
			return nil, fmt.Errorf("proxy: forwards[%d] listen udp %q: used by an earlier udp forward", i, fw.Listen)
		}
		want[fw.Listen] = fw
		if _, ok := f.byUDP[fw.Listen]; ok {
			continue
		}
		pc, err := listenUDPForward(fw.Listen)
		if err != nil {
			abort()
			return nil, fmt.Errorf("proxy: forwards[%d] listen udp %q: %w", i, fw.Listen, err)
		}
		u := &udpForward{pc: pc, done: make(chan struct{})}
		u.fwd.Store(&fw)
		u.mux = newFlowMux(f.ctx, pc, fw.Listen, fd, f.dialTimeout, fw.IdleTimeout, fw.maxConnections(), f.log)
		opened = append(opened, u)
	}
	commit = func() {
		for addr, u := range f.byUDP {
			if fw, ok := want[addr]; ok {
				u.fwd.Store(&fw)
				u.mux.setIdle(fw.IdleTimeout)
				continue
			}
			u.close()
			delete(f.byUDP, addr)
		}
		for _, u := range opened {
			f.byUDP[u.fwd.Load().Listen] = u
			go u.serve()
		}
	}
	return commit, nil
}

// Flows lists the live flows of the udp forwards.
func (f *Forwarder) Flows() []FlowStats {
	f.mu.Lock()
	us := slices.Collect(maps.Values(f.byUDP))
	f.mu.Unlock()
	var out []FlowStats
	for _, u := range us {
		out = append(out, u.mux.stats()...)
	}
	return out
}
