package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
	"github.com/quic-go/quic-go"
)

// revokeBound is RELIABILITY S5's bound: a revoked peer's streams are
// closed at most a second after the reload returns.
const revokeBound = time.Second

// reloadSetup is a server S trusting A and B, with echo services X and Y
// that both may use, and A and B connected to it.
type reloadSetup struct {
	srv, a, b *testNode
	peers     []node.Peer // S's trust list
	services  []node.Service
}

func newReloadSetup(t *testing.T) *reloadSetup {
	x, y := newEchoBackend(t), newEchoBackend(t)
	a, b := newNode(t, node.Config{Name: "A"}), newNode(t, node.Config{Name: "B"})
	rs := &reloadSetup{
		peers: []node.Peer{a.peer("A", false), b.peer("B", false)},
		services: []node.Service{
			{Name: "X", Target: x.Addr(), Allow: []string{"A", "B"}},
			{Name: "Y", Target: y.Addr(), Allow: []string{"A", "B"}},
		},
	}
	rs.srv = startNode(t, node.Config{Name: "S", Peers: rs.peers, Services: rs.services})
	for _, n := range []*testNode{a, b} {
		if err := n.Apply([]node.Peer{rs.srv.peer("S", true)}, nil); err != nil {
			t.Fatal(err)
		}
		n.run()
	}
	rs.a, rs.b = a, b
	return rs
}

// liveStream is an open echo stream that the test drives chunk by chunk.
type liveStream struct {
	name string
	c    proxy.Conn
}

func openLive(t *testing.T, n *testNode, svc string) *liveStream {
	t.Helper()
	c, err := n.DialService(testCtx(t), "S", svc)
	if err != nil {
		t.Fatalf("%s→%s: %v", n.Name(), svc, err)
	}
	t.Cleanup(c.Abort)
	ls := &liveStream{name: n.Name() + "→" + svc, c: c}
	if err := ls.roundTrip(randomBytes(32 << 10)); err != nil {
		t.Fatalf("%s: first round trip: %v", ls.name, err)
	}
	return ls
}

// roundTrip sends data and reads the same bytes back.
func (ls *liveStream) roundTrip(data []byte) error {
	bound(ls.c, failBound)
	werr := make(chan error, 1)
	go func() { _, err := ls.c.Write(data); werr <- err }()
	got := make([]byte, len(data))
	_, rerr := io.ReadFull(ls.c, got)
	if err := <-werr; err != nil && rerr == nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return rerr
	}
	if !bytes.Equal(got, data) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// finish half-closes and expects a clean EOF after the echo.
func (ls *liveStream) finish(data []byte) error {
	return echoRoundTrip(ls.c, data)
}

// stream reads a live stream until it fails, writing all the while; done
// is closed with the error that ended the reads.
type streamer struct {
	got  chan struct{} // closed once some bytes came back
	done chan struct{}
	err  error
}

func stream(t *testing.T, c proxy.Conn) *streamer {
	s := &streamer{got: make(chan struct{}), done: make(chan struct{})}
	chunk := randomBytes(16 << 10)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	go func() {
		defer close(s.done)
		buf := make([]byte, 64<<10)
		var once sync.Once
		for {
			if _, err := c.Read(buf); err != nil {
				s.err = err
				c.Abort()
				wg.Wait()
				return
			}
			once.Do(func() { close(s.got) })
		}
	}()
	t.Cleanup(func() { c.Abort(); <-s.done })
	return s
}

func isAppClose(err error, code transport.CloseCode) bool {
	var ae *quic.ApplicationError
	return errors.As(err, &ae) && transport.CloseCode(ae.ErrorCode) == code && ae.Remote
}

func isStreamReset(err error, code transport.StreamCode) bool {
	var se *quic.StreamError
	return errors.As(err, &se) && transport.StreamCode(se.ErrorCode) == code && se.Remote
}

// TestReloadRemovesPeer is RELIABILITY S5: B has a long transfer running
// when a reload drops it from the trust list. B's streams end with a reset
// within a second, B cannot come back, and A's concurrent transfer is
// byte-exact.
func TestReloadRemovesPeer(t *testing.T) {
	rs := newReloadSetup(t)
	ctx := testCtx(t)
	bc, err := rs.b.DialService(ctx, "S", "X")
	if err != nil {
		t.Fatal(err)
	}
	bs := stream(t, bc)

	ac, err := rs.a.DialService(ctx, "S", "Y")
	if err != nil {
		t.Fatal(err)
	}
	bound(ac, failBound)
	data := randomBytes(2 << 20)
	halfway, reloaded := make(chan struct{}), make(chan struct{})
	var werr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(halfway)
		if _, werr = ac.Write(data[:len(data)/2]); werr != nil {
			return
		}
	})
	wg.Go(func() {
		<-halfway
		<-reloaded
		if werr != nil {
			return
		}
		if _, werr = ac.Write(data[len(data)/2:]); werr == nil {
			werr = ac.CloseWrite()
		}
	})
	var got []byte
	var rerr error
	wg.Go(func() { got, rerr = io.ReadAll(ac) })

	<-halfway
	select {
	case <-bs.got:
	case <-bs.done:
		t.Fatalf("B's transfer ended before the reload: %v", bs.err)
	}
	if err := rs.srv.Apply(rs.peers[:1], rs.services); err != nil {
		t.Fatalf("Apply without B: %v", err)
	}
	close(reloaded)

	select {
	case <-bs.done:
		if isEOFOrNil(bs.err) {
			t.Errorf("B's stream ended cleanly (%v); a revoked peer's stream must be reset", bs.err)
		} else if !isAppClose(bs.err, transport.CodeRemoved) {
			t.Errorf("B's stream ended with %v, want the session closed with code %#x (removed)", bs.err, transport.CodeRemoved)
		}
	case <-time.After(revokeBound):
		t.Errorf("B's stream still running %v after the reload returned", revokeBound)
	}

	wg.Wait()
	if werr != nil || rerr != nil {
		t.Fatalf("A's transfer during the reload: write %v, read %v", werr, rerr)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("A's transfer during the reload: got %d bytes, sent %d; contents differ", len(got), len(data))
	}
	ac.Close()

	_, err = rs.b.DialService(ctx, "S", "X")
	if !errors.Is(err, transport.ErrHandshake) {
		t.Errorf("B dialing again after removal: err = %v, want %v", err, transport.ErrHandshake)
	}
	if _, ok := peerState(rs.srv, "B"); ok {
		t.Errorf("S still lists B after the reload: %+v", rs.srv.Peers())
	}
	for _, s := range rs.srv.Sessions() {
		if s.Peer == "B" {
			t.Errorf("S still has a session with B: %+v", s)
		}
	}
	if err := dialEcho(ctx, rs.a, "S", "X", randomBytes(1024)); err != nil {
		t.Errorf("A→X after the reload: %v", err)
	}
}

// TestReloadRevokesService keeps B trusted but drops it from X's allow
// list: B's stream to X is reset, its stream to Y and A's stream to X go on.
func TestReloadRevokesService(t *testing.T) {
	rs := newReloadSetup(t)
	bx, by, ax := openLive(t, rs.b, "X"), openLive(t, rs.b, "Y"), openLive(t, rs.a, "X")

	services := append([]node.Service(nil), rs.services...)
	services[0].Allow = []string{"A"}
	if err := rs.srv.Apply(rs.peers, services); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	bound(bx.c, revokeBound)
	buf := make([]byte, 1)
	if _, err := bx.c.Read(buf); !isStreamReset(err, transport.StreamRevoked) {
		t.Errorf("B→X after the reload: read err = %v, want a reset with code %#x (revoked)", err, transport.StreamRevoked)
	}
	for _, ls := range []*liveStream{by, ax} {
		if err := ls.roundTrip(randomBytes(64 << 10)); err != nil {
			t.Errorf("%s after the reload: %v", ls.name, err)
		}
		if err := ls.finish(randomBytes(64 << 10)); err != nil {
			t.Errorf("%s after the reload: %v", ls.name, err)
		}
	}
	ctx := testCtx(t)
	err := refusal(ctx, rs.b, "S", "X")
	var se *transport.StatusError
	if !errors.As(err, &se) || se.Status != transport.StatusAccessDenied {
		t.Errorf("B→X after the reload: err = %v, want %q", err, transport.StatusAccessDenied)
	}
	if err := dialEcho(ctx, rs.b, "S", "Y", randomBytes(1024)); err != nil {
		t.Errorf("B→Y after the reload: %v", err)
	}
	if ss := rs.srv.Sessions(); len(ss) != 2 {
		t.Errorf("S has %d sessions after the reload, want 2 (A and B): %+v", len(ss), ss)
	}
}

// TestReloadInvalidChangesNothing is RELIABILITY S6 at the node's level: an
// Apply that fails (a peer with the node's own ID) changes nothing.
func TestReloadInvalidChangesNothing(t *testing.T) {
	rs := newReloadSetup(t)
	bx, ay := openLive(t, rs.b, "X"), openLive(t, rs.a, "Y")
	peersBefore, servicesBefore := rs.srv.Peers(), rs.srv.Services()

	bad := []node.Peer{rs.peers[0], rs.srv.peer("self", false)}
	if err := rs.srv.Apply(bad, rs.services[1:]); err == nil {
		t.Fatal("Apply with the node's own ID as a peer succeeded; want an error")
	}

	for _, ls := range []*liveStream{bx, ay} {
		if err := ls.roundTrip(randomBytes(64 << 10)); err != nil {
			t.Errorf("%s after the failed reload: %v", ls.name, err)
		}
	}
	if got := rs.srv.Peers(); !samePeers(got, peersBefore) {
		t.Errorf("peers changed by a failed reload:\n got %+v\nwant %+v", got, peersBefore)
	}
	if got := rs.srv.Services(); !sameServices(got, servicesBefore) {
		t.Errorf("services changed by a failed reload:\n got %+v\nwant %+v", got, servicesBefore)
	}
	ctx := testCtx(t)
	if err := dialEcho(ctx, rs.b, "S", "X", randomBytes(1024)); err != nil {
		t.Errorf("B→X after the failed reload: %v", err)
	}
	for _, ls := range []*liveStream{bx, ay} {
		if err := ls.finish(randomBytes(1024)); err != nil {
			t.Errorf("%s: %v", ls.name, err)
		}
	}
}

func samePeers(a, b []node.PeerStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].ID != b[i].ID || a[i].State != b[i].State {
			return false
		}
	}
	return true
}

func sameServices(a, b []node.ServiceStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Target != b[i].Target ||
			fmt.Sprint(a[i].Allow) != fmt.Sprint(b[i].Allow) || a[i].Active != b[i].Active {
			return false
		}
	}
	return true
}

// TestReloadDuringStreams reloads S over and over, flipping B on and off
// X's allow list, while A opens streams to X: A is allowed throughout, so
// every one of its streams must succeed. Under -race this also checks that
// a stream's access check and a reload do not touch the service unguarded.
func TestReloadDuringStreams(t *testing.T) {
	rs := newReloadSetup(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	var wg sync.WaitGroup
	var errs []error
	var mu sync.Mutex // guards errs
	var done atomic.Int64
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := dialEcho(ctx, rs.a, "S", "X", randomBytes(512))
				if err != nil && ctx.Err() == nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				done.Add(1)
			}
		})
	}
	services := append([]node.Service(nil), rs.services...)
	for i := 0; done.Load() < 300; i++ {
		services[0].Allow = [][]string{{"A"}, {"A", "B"}}[i%2]
		if err := rs.srv.Apply(rs.peers, services); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d streams in %v", done.Load(), failBound)
		}
	}
	cancel()
	wg.Wait()
	for _, err := range errs {
		t.Errorf("A→X during reloads: %v", err)
	}
}
