package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
)

// hangingDialer's dials wait until their context ends.
type hangingDialer struct{}

func (hangingDialer) DialFlow(ctx context.Context, _, _ string) (Flow, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUDPQueuedBounded: datagrams waiting for flows whose dials hang are
// held up to flowSendQueueBytes a flow and maxUDPQueued in all, the rest
// dropped, counted and logged once; when the flows end their queues are
// let go. Without the bound in all, 80 such flows held 80 MiB.
func TestUDPQueuedBounded(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var logs syncBuffer
	m := newFlowMux(context.Background(), pc, "test", hangingDialer{}, time.Minute, 0, 1000, slog.New(slog.NewTextHandler(&logs, nil)))
	base := udpQueued.Load()
	const flows, size = 80, 60_000
	datagram := bytes.Repeat([]byte{1}, size)
	dest := func() (string, string, []byte, error) { return "db", "dns", nil, nil }
	for i := range flows {
		key := flowKey{client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(10000+i))}
		for range flowSendQueueBytes/size + 2 { // two past the flow's own bound
			m.route(key, datagram, dest)
		}
	}
	held := udpQueued.Load() - base
	var dropped uint64
	for _, st := range m.stats() {
		dropped += st.Dropped[DropSendQueue]
	}
	t.Logf("%d flows: %d MiB held, %d datagrams dropped", flows, held>>20, dropped)
	if held > 64<<20 { // as README says
		t.Fatalf("%d MiB held for hanging flows; want at most 64 MiB", held>>20)
	}
	perFlow := int64(flowSendQueueBytes / size * size)
	if wantDropped := uint64(flows*(flowSendQueueBytes/size+2)) - uint64(held/size); dropped != wantDropped || held < maxUDPQueued-perFlow {
		t.Fatalf("held %d bytes and dropped %d datagrams; want the budget full and the other %d dropped", held, dropped, wantDropped)
	}
	if n := strings.Count(logs.String(), "reached the limit"); n != 1 {
		t.Fatalf("the full budget was logged %d times; want once:\n%s", n, logs.String())
	}
	m.close()
	if left := udpQueued.Load() - base; left != 0 {
		t.Fatalf("%d bytes still counted after the flows ended", left)
	}
}

// quietFlow is a dialed flow that never receives a datagram.
type quietFlow struct {
	done chan struct{}
	once sync.Once
}

func (f *quietFlow) NextDatagram() ([]byte, error) { <-f.done; return nil, io.EOF }
func (f *quietFlow) ReadDatagram([]byte) (int, error) {
	<-f.done
	return 0, io.EOF
}
func (f *quietFlow) WriteDatagram([]byte) error { return nil }
func (f *quietFlow) Close() error               { f.once.Do(func() { close(f.done) }); return nil }
func (f *quietFlow) Dropped() map[string]uint64 { return nil }

type quietDialer struct{ dialed atomic.Int64 }

func (d *quietDialer) DialFlow(context.Context, string, string) (Flow, error) {
	d.dialed.Add(1)
	return &quietFlow{done: make(chan struct{})}, nil
}

// TestUDPIdleFlowCost: a flow waiting for its service's next datagram holds
// no read buffer of its own. A client that sends each query from a new port
// makes a flow per query, kept for the idle timeout; with a 65,535-byte
// buffer each, 2,000 of them held 128 MiB.
func TestUDPIdleFlowCost(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	d := &quietDialer{}
	m := newFlowMux(context.Background(), pc, "test", d, time.Minute, 0, 10_000, slog.New(slog.DiscardHandler))
	defer m.close()
	before := testnet.HeapInUse()
	const flows = 2000
	dest := func() (string, string, []byte, error) { return "db", "dns", nil, nil }
	for i := range flows {
		key := flowKey{client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(10000+i))}
		m.route(key, []byte("query"), dest)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.dialed.Load() < flows && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // every flow's receive goroutine waiting
	perFlow := (int64(testnet.HeapInUse()) - int64(before)) / flows
	t.Logf("%d idle flows: %d bytes each", flows, perFlow)
	if perFlow > 16<<10 {
		t.Fatalf("an idle flow costs %d bytes of heap; want under 16 KiB", perFlow)
	}
}
