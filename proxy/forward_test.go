package proxy_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// echoDialer is the Forwarder's seam made real: every "service" is a TCP
// echo server on loopback. It records which service each connection asked
// for, and can be made to fail.
type echoDialer struct {
	echo *echoServer
	fail atomic.Bool

	mu      sync.Mutex // guards asked, remotes
	asked   []string   // "peer/service" per dial
	remotes []*trackedConn
}

func newEchoDialer(t *testing.T) *echoDialer { return &echoDialer{echo: newEchoServer(t)} }

var errDialRefused = errors.New("test: dial refused")

func (d *echoDialer) DialService(ctx context.Context, peer, service string) (proxy.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, peer+"/"+service)
	d.mu.Unlock()
	if d.fail.Load() {
		return nil, errDialRefused
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", d.echo.Addr())
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: proxy.NetConn(c)}
	d.mu.Lock()
	d.remotes = append(d.remotes, tc)
	d.mu.Unlock()
	return tc, nil
}

func (d *echoDialer) lastAsked() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.asked) == 0 {
		return ""
	}
	return d.asked[len(d.asked)-1]
}

// trackedConn records how the forwarder ended the overlay side.
type trackedConn struct {
	proxy.Conn
	aborted, closed atomic.Bool
}

func (c *trackedConn) Abort()       { c.aborted.Store(true); c.Conn.Abort() }
func (c *trackedConn) Close() error { c.closed.Store(true); return c.Conn.Close() }

func newForwarder(t *testing.T, d proxy.Dialer) *proxy.Forwarder {
	f := proxy.NewForwarder(d, nil)
	t.Cleanup(func() { f.Close(context.Background()) })
	return f
}

func fwd(listen, service string) proxy.Forward {
	return proxy.Forward{Listen: listen, Peer: "db", Service: service}
}

func addrOf(t *testing.T, f *proxy.Forwarder, listen string) string {
	t.Helper()
	a := f.Addr(listen)
	if a == nil {
		t.Fatalf("no forward listening for %q", listen)
	}
	return a.String()
}

// dialLocal connects to a forward as an unmodified client would.
func dialLocal(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connect to the forward %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(failBound))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes data and reads the echo of exactly that much.
func roundTrip(c *net.TCPConn, data []byte) error {
	werr := make(chan error, 1)
	go func() { _, err := c.Write(data); werr <- err }()
	got := make([]byte, len(data))
	_, rerr := io.ReadFull(c, got)
	if err := <-werr; err != nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// finish half-closes c and expects the rest of the echo and a clean EOF.
func finish(c *net.TCPConn, data []byte) error {
	if err := roundTrip(c, data); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	rest, err := io.ReadAll(c)
	if err != nil || len(rest) != 0 {
		return fmt.Errorf("after half-close: read %d more bytes, %v; want EOF", len(rest), err)
	}
	return nil
}

func TestForwarderApplyOpens(t *testing.T) {
	d := newEchoDialer(t)
	f := newForwarder(t, d)
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "pg")}); err != nil {
		t.Fatal(err)
	}
	c := dialLocal(t, addrOf(t, f, "127.0.0.1:0"))
	if err := finish(c, randomBytes(1<<20)); err != nil {
		t.Fatalf("through the forward: %v", err)
	}
	if got := d.lastAsked(); got != "db/pg" {
		t.Errorf("dialer asked for %q, want db/pg", got)
	}
	st := f.Stats()
	if len(st) != 1 || st[0].Total != 1 || st[0].Service != "pg" {
		t.Errorf("Stats = %+v; want one forward to pg with one connection", st)
	}
}

// freeTCPAddr returns a loopback address that was free a moment ago.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestForwarderFailedApplyChangesNothing applies a set whose last forward
// cannot listen (port in use): the error names it, the forward opened
// before it is closed again, and the old forward keeps its socket and its
// old target.
func TestForwarderFailedApplyChangesNothing(t *testing.T) {
	d := newEchoDialer(t)
	f := newForwarder(t, d)
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "old")}); err != nil {
		t.Fatal(err)
	}
	oldAddr := addrOf(t, f, "127.0.0.1:0")
	live := dialLocal(t, oldAddr)
	if err := roundTrip(live, []byte("before")); err != nil {
		t.Fatal(err)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fresh := freeTCPAddr(t)
	err = f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "new"), fwd(fresh, "fresh"), fwd(busy.Addr().String(), "busy")})
	if err == nil {
		t.Fatal("Apply with a port in use succeeded")
	}
	if !strings.Contains(err.Error(), busy.Addr().String()) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Apply error %q; want it to name %s and wrap EADDRINUSE", err, busy.Addr())
	}

	if got := addrOf(t, f, "127.0.0.1:0"); got != oldAddr {
		t.Errorf("old forward moved from %s to %s", oldAddr, got)
	}
	if f.Addr(fresh) != nil {
		t.Errorf("forward %s from the failed Apply is registered", fresh)
	}
	if c, err := net.Dial("tcp", fresh); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the failed Apply", fresh)
	}
	if err := finish(live, randomBytes(64<<10)); err != nil {
		t.Errorf("connection open across the failed Apply: %v", err)
	}
	c := dialLocal(t, oldAddr)
	if err := finish(c, randomBytes(1024)); err != nil {
		t.Fatalf("new connection to the old forward: %v", err)
	}
	if got := d.lastAsked(); got != "db/old" {
		t.Errorf("after the failed Apply the forward dials %q, want db/old", got)
	}
	if st := f.Stats(); len(st) != 1 || st[0].Service != "old" {
		t.Errorf("Stats after the failed Apply = %+v; want only the old forward", st)
	}
}

// TestForwarderRetarget changes a forward's target: the socket stays (same
// port, live connections go on) and new connections go to the new target.
func TestForwarderRetarget(t *testing.T) {
	d := newEchoDialer(t)
	f := newForwarder(t, d)
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "one")}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, f, "127.0.0.1:0")
	live := dialLocal(t, addr)
	if err := roundTrip(live, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "two")}); err != nil {
		t.Fatal(err)
	}
	if got := addrOf(t, f, "127.0.0.1:0"); got != addr {
		t.Fatalf("retargeted forward moved from %s to %s; the socket must stay", addr, got)
	}
	if err := finish(live, randomBytes(256<<10)); err != nil {
		t.Errorf("connection open across the retarget: %v", err)
	}
	c := dialLocal(t, addr)
	if err := finish(c, []byte("again")); err != nil {
		t.Fatal(err)
	}
	if got := d.lastAsked(); got != "db/two" {
		t.Errorf("new connection dialed %q, want db/two", got)
	}
}

func TestForwarderRemove(t *testing.T) {
	d := newEchoDialer(t)
	f := newForwarder(t, d)
	keep, drop := "127.0.0.1:0", freeTCPAddr(t)
	if err := f.Apply([]proxy.Forward{fwd(keep, "keep"), fwd(drop, "drop")}); err != nil {
		t.Fatal(err)
	}
	if err := finish(dialLocal(t, drop), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply([]proxy.Forward{fwd(keep, "keep")}); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", drop); err == nil {
		c.Close()
		t.Fatalf("removed forward %s still accepts connections", drop)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to the removed forward: %v; want ECONNREFUSED", err)
	}
	if f.Addr(drop) != nil {
		t.Errorf("removed forward still registered")
	}
	if err := finish(dialLocal(t, addrOf(t, f, keep)), []byte("y")); err != nil {
		t.Errorf("kept forward: %v", err)
	}
}

// TestForwarderCloseDrains closes while a connection is in flight, with
// time to spare: the connection finishes byte-exact and Close returns
// after it; the listener is gone at once.
func TestForwarderCloseDrains(t *testing.T) {
	d := newEchoDialer(t)
	f := proxy.NewForwarder(d, nil)
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "svc")}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, f, "127.0.0.1:0")
	c := dialLocal(t, addr)
	if err := roundTrip(c, []byte("start")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- f.Close(ctx) }()
	waitRefused(t, addr)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a connection in flight and time left", err)
	default:
	}
	if err := finish(c, randomBytes(256<<10)); err != nil {
		t.Fatalf("connection in flight during Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := f.Stats(); len(st) != 0 {
		t.Errorf("Stats after Close = %+v", st)
	}
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "svc")}); err == nil {
		t.Errorf("Apply after Close succeeded")
	}
}

// TestForwarderCloseForces closes with no time to spare: the connection in
// flight is reset on both sides before Close returns.
func TestForwarderCloseForces(t *testing.T) {
	d := newEchoDialer(t)
	f := proxy.NewForwarder(d, nil)
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "svc")}); err != nil {
		t.Fatal(err)
	}
	c := dialLocal(t, addrOf(t, f, "127.0.0.1:0"))
	if err := roundTrip(c, []byte("start")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	d.mu.Lock()
	remotes := append([]*trackedConn(nil), d.remotes...)
	d.mu.Unlock()
	if len(remotes) != 1 || !remotes[0].aborted.Load() {
		t.Errorf("overlay side not aborted by the time Close returned")
	}
	buf := make([]byte, 16)
	if n, err := c.Read(buf); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("local client read %d bytes, %v after a forced Close; want a reset", n, err)
	}
}

// waitRefused waits until nothing accepts connections at addr.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(failBound)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForwarderDialFails makes the overlay refuse: the local client sees
// its connection end with a reset and no bytes.
func TestForwarderDialFails(t *testing.T) {
	d := newEchoDialer(t)
	d.fail.Store(true)
	f := newForwarder(t, d)
	if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", "svc")}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addrOf(t, f, "127.0.0.1:0"))
	if err != nil {
		// The reset can beat the end of the client's own connect.
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("connect to the forward: %v; want success or ECONNRESET", err)
		}
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(failBound))
	got, err := io.ReadAll(c)
	if len(got) != 0 {
		t.Errorf("client read %d bytes from a forward whose dial failed", len(got))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read ended with %v; want ECONNRESET", err)
	}
	if d.echo.Accepted() != 0 {
		t.Errorf("backend accepted a connection")
	}
}
