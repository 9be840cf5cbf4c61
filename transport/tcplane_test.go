package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/internal/testnet"
)

// tcpEndpoints makes two endpoints with TCP listeners on loopback that
// trust each other, with the rest of their config from cfg.
func tcpEndpoints(t *testing.T, ka, kb identity.PrivateKey, cfg Config) (a, b *Endpoint) {
	t.Helper()
	listen := func(k identity.PrivateKey, trust func([32]byte) (identity.PeerID, bool)) *Endpoint {
		c := cfg
		c.Key, c.Trust = k, trust
		c.Listen, c.ListenTCP = []string{"127.0.0.1:0"}, []string{"127.0.0.1:0"}
		ep, err := Listen(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	return listen(ka, trustOnly(t, kb)), listen(kb, trustOnly(t, ka))
}

// tcpEchoPair makes a TCP session between two fresh endpoints with cfg,
// a's end dialed, b's serving echo.
func tcpEchoPair(t *testing.T, ctx context.Context, cfg Config) (a, b *Endpoint, sa, sb *Session) {
	t.Helper()
	ka, kb := newKey(t), newKey(t)
	a, b = tcpEndpoints(t, ka, kb, cfg)
	sa, sb = pairUp(t, ctx, b, func() (*Session, error) { return a.DialTCP(ctx, kb.PeerID(), b.TCPAddrs()[0].String()) })
	echoServer(ctx, sb)
	return a, b, sa, sb
}

// waitConns waits until both ends of a session count n connections.
func waitConns(t *testing.T, sa, sb *Session, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for (sa.Stats().Conns != n || sb.Stats().Conns != n) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if a, b := sa.Stats().Conns, sb.Stats().Conns; a != n || b != n {
		t.Fatalf("the ends count %d and %d connections; want %d", a, b, n)
	}
}

// TestTCPLanes: a TCP session that carries a stream adds a second TCP
// connection; new streams spread over both and carry every byte; an idle
// extra lane stays up past the idle timeout on its own pings; and when it
// breaks, only its streams end.
func TestTCPLanes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, sa, sb := tcpEchoPair(t, ctx, Config{KeepAlive: 200 * time.Millisecond, IdleTimeout: time.Second})
	if n := sa.Stats().Conns; n != 1 {
		t.Fatalf("a session that carried nothing has %d connections; want 1", n)
	}
	echoAll(t, openEchoStreams(t, ctx, sa, 1), 10)
	waitConns(t, sa, sb, tcpLanes)

	// Eight streams at once land on both lanes, and every byte of a
	// bulk transfer on each comes back.
	streams := openEchoStreams(t, ctx, sa, 8)
	perLane := map[uint64]int{}
	for _, st := range streams {
		perLane[st.lane.id]++
	}
	if len(perLane) != tcpLanes {
		t.Fatalf("8 streams on lanes %v; want them spread over %d", perLane, tcpLanes)
	}
	big := make([]byte, 4<<20)
	rand.Read(big)
	var wg sync.WaitGroup
	for i, st := range streams {
		wg.Go(func() {
			go func() { st.Write(big); st.CloseWrite() }()
			got, err := io.ReadAll(st)
			if err != nil || !bytes.Equal(got, big) {
				t.Errorf("stream %d (lane %x): %d of %d bytes back, %v", i, st.lane.id, len(got), len(big), err)
			}
			st.Close()
		})
	}
	wg.Wait()

	// Idle for over two idle timeouts: the extra lane keeps itself alive.
	time.Sleep(2500 * time.Millisecond)
	waitConns(t, sa, sb, tcpLanes)

	// A stream on each lane; the extra lane's connection breaks.
	held := openEchoStreams(t, ctx, sa, 2)
	var onExtra, onFirst *Stream
	for _, st := range held {
		if st.lane.id == 0 {
			onFirst = st
		} else {
			onExtra = st
		}
	}
	if onFirst == nil || onExtra == nil {
		t.Fatalf("two streams did not take one lane each")
	}
	onExtra.lane.conn.(*tcpCarrier).nc.Conn.Close()
	if _, err := io.ReadAll(onExtra); err == nil {
		t.Fatal("a stream on the broken lane ended cleanly")
	}
	msg := []byte("first lane still here")
	onFirst.Write(msg)
	onFirst.CloseWrite()
	if got, err := io.ReadAll(onFirst); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the first lane's stream after the other broke: %q, %v", got, err)
	}
	if sa.State() != StateEstablished || sa.Err() != nil {
		t.Fatalf("the session ended with its extra lane: %v", sa.Err())
	}
	// The next streams bring the second lane back.
	echoAll(t, openEchoStreams(t, ctx, sa, 2), 10)
	waitConns(t, sa, sb, tcpLanes)

	// Idle past laneIdle, the extra lane is retired by both sides'
	// agreement, and the next stream brings it back once more.
	old := laneIdle.get()
	laneIdle.set(50 * time.Millisecond)
	t.Cleanup(func() { laneIdle.set(old) })
	waitConns(t, sa, sb, 1)
	laneIdle.set(old)
	echoAll(t, openEchoStreams(t, ctx, sa, 1), 10)
	waitConns(t, sa, sb, tcpLanes)
}

// TestTCPLaneRefused: an extra TCP connection that names no session of
// its peer, or names a QUIC session, or comes on a relayed stream, is
// refused; a responder takes at most tcpMaxLanes per session, and warns
// once when a peer goes past them.
func TestTCPLaneRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ka, kb, kc := newKey(t), newKey(t), newKey(t)
	var capLogged atomic.Int32
	a, b := tcpEndpoints(t, ka, kb, Config{Logger: slog.New(countLog{"more connections than a session takes", &capLogged})})
	b.cfg.Trust = trustOnly(t, ka, kc)
	c, _ := tcpEndpoints(t, kc, kb, Config{})
	sa, sb := pairUp(t, ctx, b, func() (*Session, error) { return a.DialTCP(ctx, kb.PeerID(), b.TCPAddrs()[0].String()) })
	bTCP := b.TCPAddrs()[0].String()

	// c is trusted by b but presents a's lane key.
	if _, err := c.dialTCP(ctx, kb.PeerID(), bTCP, sa.laneKey[:]); err == nil {
		t.Fatal("a lane with another peer's session key was accepted")
	}
	// a with a key no session has.
	if _, err := a.dialTCP(ctx, kb.PeerID(), bTCP, make([]byte, 16)); err == nil {
		t.Fatal("a lane with an unknown key was accepted")
	}
	// a's TCP session key, presented over QUIC.
	if _, _, _, err := a.dialConn(ctx, kb.PeerID(), b.Addrs()[0], sa.laneKey[:]); err == nil || !isRefused(err) {
		t.Fatalf("a QUIC lane for a TCP session: %v, want refused", err)
	}
	if n := sb.Stats().Conns; n != 1 {
		t.Fatalf("responder's session has %d connections, want 1", n)
	}
	acceptNone(t, b, 200*time.Millisecond)

	// a dials more lanes than b takes.
	for range tcpMaxLanes + 2 {
		info, err := a.dialTCP(ctx, kb.PeerID(), bTCP, sa.laneKey[:])
		if err != nil {
			t.Fatal(err)
		}
		l, err := a.tcpLane(info, true, true, sa.conn.(*tcpCarrier).budget)
		if err != nil {
			t.Fatal(err)
		}
		l.dialed = true // as dialTCPLane marks it
		if err := sa.addLane(l); err != nil {
			l.conn.CloseWithError(CodeNormal, "")
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := sb.Stats().Conns; n != tcpMaxLanes {
		t.Fatalf("responder's session has %d connections, want at most %d", n, tcpMaxLanes)
	}
	if n := capLogged.Load(); n != 1 {
		t.Errorf("the responder logged the lane cap %d times; want once", n)
	}
}

// TestTCPLaneDialFails: when the second TCP connection cannot be made, the
// session goes on over its one, and the next dial waits laneBackoff, which
// doubles with each failure in a row up to 64 times laneRetry.
func TestTCPLaneDialFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, b, sa, _ := tcpEchoPair(t, ctx, Config{})
	for _, ln := range b.tcpListeners {
		ln.Close() // the first connection stays; a second is refused
	}
	fails := func() int {
		sa.lanesMu.Lock()
		defer sa.lanesMu.Unlock()
		return sa.growFails
	}
	echoAll(t, openEchoStreams(t, ctx, sa, 1), 10)
	for deadline := time.Now().Add(5 * time.Second); fails() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if fails() != 1 {
		t.Fatalf("%d failed lane dials; want 1", fails())
	}
	// More streams within the backoff dial nothing more, and work.
	echoAll(t, openEchoStreams(t, ctx, sa, 8), 100)
	time.Sleep(100 * time.Millisecond)
	if n, f := sa.Stats().Conns, fails(); n != 1 || f != 1 {
		t.Fatalf("%d connections and %d failed dials after more streams; want 1 and 1", n, f)
	}
	for fails, want := range map[int]time.Duration{1: laneRetry, 2: 2 * laneRetry, 3: 4 * laneRetry, 7: 64 * laneRetry, 30: 64 * laneRetry} {
		if got := laneBackoff(fails); got != want {
			t.Errorf("laneBackoff(%d) = %v; want %v", fails, got, want)
		}
	}
}

// countLog counts the log records whose message contains sub.
type countLog struct {
	sub string
	n   *atomic.Int32
}

func (h countLog) Enabled(context.Context, slog.Level) bool { return true }
func (h countLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.sub) {
		h.n.Add(1)
	}
	return nil
}
func (h countLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countLog) WithGroup(string) slog.Handler      { return h }

// TestTCPSessionStreamCap: the bound on a peer's live streams holds for the
// TCP session's lanes together, not per connection: past it a stream is
// refused whichever lane it comes on, with one log line; once a stream
// ends, the next is taken.
func TestTCPSessionStreamCap(t *testing.T) {
	const limit = 6
	tcpSessionStreams.Store(limit)
	t.Cleanup(func() { tcpSessionStreams.Store(tcpMaxStreams) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logged atomic.Int32
	_, _, sa, sb := tcpEchoPair(t, ctx, Config{Logger: slog.New(countLog{"most streams a TCP session takes", &logged})})
	echoAll(t, openEchoStreams(t, ctx, sa, 1), 1)
	waitConns(t, sa, sb, tcpLanes)

	held := openEchoStreams(t, ctx, sa, limit)
	perLane := map[uint64]int{}
	for _, st := range held {
		perLane[st.lane.id]++
	}
	if len(perLane) != tcpLanes {
		t.Fatalf("%d streams on lanes %v; want both lanes used", limit, perLane)
	}
	for i := range 2 * tcpLanes { // past the cap, on either lane
		st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "echo"}, 5*time.Second)
		if err == nil {
			t.Fatalf("stream %d past the session's cap of %d was taken (lane %x)", limit+i+1, limit, st.lane.id)
		}
	}
	if n := logged.Load(); n != 1 {
		t.Errorf("the cap was logged %d times; want once", n)
	}
	echoAll(t, held[:1], 1) // one ends
	deadline := time.Now().Add(5 * time.Second)
	for sb.inbound.Load() >= limit && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	echoAll(t, openEchoStreams(t, ctx, sa, 1), 1)
	echoAll(t, held[1:], 1)
}

// TestTCPSessionBufferBound: a peer that fills every stream it opens with a
// full initial window and leaves it unread (a target that stopped reading)
// can make a TCP session buffer at most tcpMaxStreams windows: past that
// its streams are refused, and the node's heap holds about what the cap
// allows. Without a cap below QUIC's, 2,048 such streams pinned 512 MiB.
func TestTCPSessionBufferBound(t *testing.T) {
	const (
		window = 256 << 10 // yamux's initial stream window
		tries  = 2048      // streams the peer tries to fill
		bound  = 320 << 20 // what README promises a peer can pin
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ka, kb := newKey(t), newKey(t)
	a, b := tcpEndpoints(t, ka, kb, Config{})
	sa, sb := pairUp(t, ctx, b, func() (*Session, error) { return a.DialTCP(ctx, kb.PeerID(), b.TCPAddrs()[0].String()) })
	var held sync.WaitGroup
	go func() { // answers every stream and then never reads it
		for {
			st, err := sb.AcceptStream(ctx)
			if err != nil {
				return
			}
			held.Go(func() {
				if _, err := st.ReadRequest(time.Second); err == nil {
					st.Respond(StatusOK)
				}
				<-ctx.Done()
			})
		}
	}()
	before := testnet.HeapInUse()
	full := bytes.Repeat([]byte{0xa5}, window-4096) // the request header took a little
	opened := 0
	for opened < tries {
		st, err := sa.OpenStream(ctx, Request{Kind: KindTCP, Service: "hold"}, 5*time.Second)
		if err != nil {
			break
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		stop := context.AfterFunc(wctx, st.Abort)
		_, err = st.Write(full)
		stop()
		wcancel()
		if err != nil {
			t.Fatalf("stream %d: writing its first window: %v", opened+1, err)
		}
		opened++
	}
	grew := int64(testnet.HeapInUse()) - int64(before)
	t.Logf("%d streams each holding %d KiB unread; heap grew by %d MiB", opened, window>>10, grew>>20)
	if opened == tries {
		t.Fatalf("the session took all %d streams; want a cap", opened)
	}
	if grew > bound {
		t.Fatalf("the heap grew by %d MiB; want at most %d MiB", grew>>20, bound>>20)
	}
	cancel()
	held.Wait()
}

// TestLaneCloseRepeated: a peer that repeats a lane-close frame for a lane
// gets one drainer for it, not a goroutine per frame.
func TestLaneCloseRepeated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, sa, sb := tcpEchoPair(t, ctx, Config{})
	echoAll(t, openEchoStreams(t, ctx, sa, 1), 1)
	waitConns(t, sa, sb, tcpLanes)
	held := openEchoStreams(t, ctx, sa, 2) // one on each lane keeps a drainer waiting
	var extra uint64
	for _, st := range held {
		if st.lane.id != 0 {
			extra = st.lane.id
		}
	}
	if extra == 0 {
		t.Fatal("no stream on the extra lane")
	}
	before := runtime.NumGoroutine()
	for range 1000 {
		sb.laneFrame(ctlLaneClose, extra, 1<<40)
	}
	if grew := runtime.NumGoroutine() - before; grew > 20 {
		t.Fatalf("1,000 lane-close frames for one lane started %d goroutines; want one drainer", grew)
	}
	for _, st := range held {
		st.Abort()
	}
}
