package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

func TestSOCKS5Connect(t *testing.T) {
	o := newTestOverlay()
	o.targets["echo"] = newEchoServer(t).Addr()
	s := newServer(t, o, proxy.Config{SOCKS5: "127.0.0.1:0"})
	addr := s.Addr(proxy.KindSOCKS5).String()

	for _, name := range []string{"echo.db.p2p", "echo.DB.P2P", "echo.db.p2p.", "echo." + strings.ToUpper(testPeerID) + ".p2p", "echo.db.lan.p2p"} {
		c, rep, err := socksConnect(t, addr, "", "", socksName(name))
		if err != nil || rep != 0 {
			t.Fatalf("%s: reply %#x, %v; want success", name, rep, err)
		}
		sent := randomBytes(1 << 20)
		go func() { c.Write(sent); c.(*net.TCPConn).CloseWrite() }()
		got, err := io.ReadAll(c)
		if err != nil || sha256.Sum256(got) != sha256.Sum256(sent) {
			t.Fatalf("%s: echoed %d bytes (%v), want the %d sent, byte-exact", name, len(got), err, len(sent))
		}
	}
	// The first dial waits for the answer; after its OK the next ones to
	// the same service open early (socks5fast.go).
	want := []string{"db/echo", "early:db/echo", "early:db/echo", "early:db/echo", "db.lan/echo"}
	if got := o.dialed(); !slices.Equal(got, want) {
		t.Fatalf("dials %q, want %q (the peer resolved without regard to case)", got, want)
	}
}

func TestSOCKS5ReplyCodes(t *testing.T) {
	o := newTestOverlay()
	o.hang = "slow"
	s := newServer(t, o, proxy.Config{SOCKS5: "127.0.0.1:0", DialTimeout: 100 * time.Millisecond})
	addr := s.Addr(proxy.KindSOCKS5).String()
	for _, tt := range []struct {
		what string
		req  []byte
		rep  byte
		kind string
	}{
		{"unknown peer", socksName("files.nobody.p2p"), 0x04, "unknown_peer"},
		{"unknown service", socksName("nosuch.db.p2p"), 0x04, "unknown_service"},
		{"access denied", socksName("secret.db.p2p"), 0x02, "access_denied"},
		{"target refused", socksName("closed.db.p2p"), 0x05, "target_refused"},
		{"peer unreachable", socksName("far.db.p2p"), 0x03, "peer_unreachable"},
		{"timeout", socksName("slow.db.p2p"), 0x03, "timeout"},
		{"IPv4 address", socksRequest(1, 1, []byte{127, 0, 0, 1}, 80), 0x02, "not_p2p"},
		{"IPv6 address", socksRequest(1, 4, net.IPv6loopback, 80), 0x02, "not_p2p"},
		{"other name", socksName("example.com"), 0x02, "not_p2p"},
		{"no service", socksName("db.p2p"), 0x01, "bad_request"},
		{"empty label", socksName("a..db.p2p"), 0x01, "bad_request"},
		{"bad service name", socksName("-x.db.p2p"), 0x01, "bad_request"},
		{"BIND", socksRequest(2, 3, []byte("echo.db.p2p"), 80), 0x07, "bad_request"},
		{"UDP ASSOCIATE", socksRequest(3, 1, []byte{0, 0, 0, 0}, 0), 0x07, "bad_request"},
		{"address type 5", []byte{5, 1, 0, 5, 0, 0, 0}, 0x08, "bad_request"},
	} {
		before := s.Stats()[0].Errors[tt.kind]
		c, rep, err := socksConnect(t, addr, "", "", tt.req)
		if err != nil || rep != tt.rep {
			t.Errorf("%s: reply %#x, %v; want %#x", tt.what, rep, err, tt.rep)
			continue
		}
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("%s: the connection stays open after a failure reply", tt.what)
		}
		if after := s.Stats()[0].Errors[tt.kind]; after != before+1 {
			t.Errorf("%s: errors[%s] went %d -> %d, want one more (counted before the reply)", tt.what, tt.kind, before, after)
		}
	}
}

func TestSOCKS5Auth(t *testing.T) {
	o := newTestOverlay()
	o.targets["echo"] = newEchoServer(t).Addr()
	s := newServer(t, o, proxy.Config{SOCKS5: "127.0.0.1:0", Username: "alice", Password: "s3cret"})
	addr := s.Addr(proxy.KindSOCKS5).String()

	c, rep, err := socksConnect(t, addr, "alice", "s3cret", socksName("echo.db.p2p"))
	if err != nil || rep != 0 {
		t.Fatalf("right credentials: reply %#x, %v; want success", rep, err)
	}
	c.Write([]byte("ping"))
	if b := readN(t, c, 4); string(b) != "ping" {
		t.Fatalf("echo %q", b)
	}
	for _, creds := range [][2]string{{"alice", "wrong"}, {"bob", "s3cret"}, {"alic", "s3cret"}} {
		if _, _, err := socksConnect(t, addr, creds[0], creds[1], socksName("echo.db.p2p")); err != errAuthFailed {
			t.Errorf("credentials %q: %v, want the RFC 1929 failure status", creds, err)
		}
	}
	// A client that offers no authentication gets "no acceptable methods".
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(failBound))
	nc.Write([]byte{5, 1, 0})
	if b := readN(t, nc, 2); !bytes.Equal(b, []byte{5, 0xff}) {
		t.Fatalf("no-auth client against a proxy with credentials: % x, want 05 ff", b)
	}
	waitUntil(t, "errors[auth] = 4", func() bool { return s.Stats()[0].Errors["auth"] == 4 })
	if got := o.dialed(); len(got) != 1 {
		t.Fatalf("dials %q: refused clients must not reach the overlay", got)
	}
}

func TestSOCKS5NoAuthRefusesUserPassOnly(t *testing.T) {
	s := newServer(t, newTestOverlay(), proxy.Config{SOCKS5: "127.0.0.1:0"})
	c, err := net.Dial("tcp", s.Addr(proxy.KindSOCKS5).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(failBound))
	c.Write([]byte{5, 1, 2})
	if b := readN(t, c, 2); !bytes.Equal(b, []byte{5, 0xff}) {
		t.Fatalf("% x, want 05 ff", b)
	}
}

func TestSOCKS5HandshakeDeadline(t *testing.T) {
	s := newServer(t, newTestOverlay(), proxy.Config{SOCKS5: "127.0.0.1:0", HandshakeTimeout: 200 * time.Millisecond})
	addr := s.Addr(proxy.KindSOCKS5).String()
	var conns []net.Conn
	// Nothing, half a greeting, a greeting without a request.
	for _, sent := range [][]byte{nil, {5}, {5, 1, 0}} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(sent)
		conns = append(conns, c)
	}
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(failBound))
		b, err := io.ReadAll(c)
		if err != nil && !isReset(err) {
			t.Fatalf("conn %d: %v, want the proxy to close it", i, err)
		}
		if i == 2 && !bytes.Equal(b, []byte{5, 0}) || i < 2 && len(b) != 0 {
			t.Fatalf("conn %d read % x before the close", i, b)
		}
	}
	waitUntil(t, "the handshake slots to free", func() bool { return s.Stats()[0].Active == 0 })
	if got := s.Stats()[0].Errors["handshake"]; got != 3 {
		t.Fatalf("errors[handshake] = %d, want 3", got)
	}
}

func TestSOCKS5Cap(t *testing.T) {
	o := newTestOverlay()
	o.targets["echo"] = newEchoServer(t).Addr()
	s := newServer(t, o, proxy.Config{SOCKS5: "127.0.0.1:0", MaxConnections: 2})
	addr := s.Addr(proxy.KindSOCKS5).String()
	for range 2 {
		if _, rep, err := socksConnect(t, addr, "", "", socksName("echo.db.p2p")); err != nil || rep != 0 {
			t.Fatalf("reply %#x, %v", rep, err)
		}
	}
	// The proxy resets a connection past the cap at once, which the dial
	// itself may see (CI did).
	c, err := net.Dial("tcp", addr)
	switch {
	case err == nil:
		defer c.Close()
		c.SetDeadline(time.Now().Add(failBound))
		c.Write([]byte{5, 1, 0})
		if _, err := c.Read(make([]byte, 2)); err == nil {
			t.Fatal("a connection past the cap got an answer")
		}
	case !isReset(err):
		t.Fatal(err)
	}
	st := s.Stats()[0]
	if st.Refused != 1 || st.Active != 2 || st.MaxConnections != 2 {
		t.Fatalf("stats %+v: want refused 1, active 2, max 2", st)
	}
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCapEvictsIdle(t *testing.T) {
	o := newTestOverlay()
	o.targets["echo"] = newEchoServer(t).Addr()
	o.targets["web"] = newWebBackend(t, []byte("ok")).addr
	s := newServer(t, o, proxy.Config{SOCKS5: "127.0.0.1:0", HTTP: "127.0.0.1:0", MaxConnections: 3})
	for i, kind := range []string{proxy.KindSOCKS5, proxy.KindHTTP} {
		addr := s.Addr(kind).String()
		var idle []net.Conn
		for range 5 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			idle = append(idle, c)
		}
		// A working client gets in although the listener is full of idle ones.
		if kind == proxy.KindSOCKS5 {
			echoThroughSOCKS(t, addr)
		} else if resp, body := dialProxy(t, addr).do(t, "GET", "GET http://web.db.p2p/ HTTP/1.1", "Host: x"); resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("http beside idle connections: %s %q", resp.Status, body)
		}
		// The oldest idle ones made room and were closed, first things first.
		idle[0].SetDeadline(time.Now().Add(failBound))
		if _, err := idle[0].Read(make([]byte, 1)); err == nil {
			t.Fatalf("%s: the oldest idle connection is still open", kind)
		}
		st := s.Stats()[i]
		if st.Evicted < 3 || st.Refused != 0 {
			t.Fatalf("%s: stats %+v; want at least 3 evicted (5 idle and a client at a cap of 3), none refused", kind, st)
		}
	}
}

// flipOverlay is the test overlay whose "echo" service can be made to
// refuse (access denied) while the proxy runs.
type flipOverlay struct {
	*testOverlay
	deny atomic.Bool
}

func (o *flipOverlay) DialService(ctx context.Context, peer, service string) (proxy.Conn, error) {
	if o.deny.Load() {
		return refusedConn{errDenied}, nil
	}
	return o.testOverlay.DialService(ctx, peer, service)
}

func (o *flipOverlay) DialServiceAnswered(ctx context.Context, peer, service string) (proxy.Conn, error) {
	if o.deny.Load() {
		return nil, errDenied
	}
	return o.testOverlay.DialServiceAnswered(ctx, peer, service)
}

// TestSOCKS5AnsweredShortcut: after an OK answer, a connection to the same
// service is answered at once; if the service then refuses, that client
// sees the connection end after its success reply, the refusal is counted,
// and the next client waits for the answer again and gets its reply code.
func TestSOCKS5AnsweredShortcut(t *testing.T) {
	o := &flipOverlay{testOverlay: newTestOverlay()}
	o.targets["echo"] = newEchoServer(t).Addr()
	s := proxy.NewServer(o, classify, nil)
	t.Cleanup(func() { s.Close(context.Background()) })
	if err := s.Apply(proxy.Config{SOCKS5: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr(proxy.KindSOCKS5).String()
	echoOnce := func() error {
		c, rep, err := socksConnect(t, addr, "", "", socksName("echo.db.p2p"))
		if err != nil || rep != 0 {
			return fmt.Errorf("reply %#x, %v", rep, err)
		}
		defer c.Close()
		c.Write([]byte("x"))
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil || b[0] != 'x' {
			return fmt.Errorf("echo: %q %v", b, err)
		}
		return nil
	}
	for i := range 2 {
		if err := echoOnce(); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	o.deny.Store(true)
	c, rep, err := socksConnect(t, addr, "", "", socksName("echo.db.p2p"))
	if err != nil || rep != 0 {
		t.Fatalf("within the shortcut: reply %#x, %v; want success at once", rep, err)
	}
	c.Write([]byte("x"))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatal("a refused stream carried bytes")
	}
	waitUntil(t, "the refusal to be counted", func() bool { return s.Stats()[0].Errors["access_denied"] == 1 })
	if _, rep, err := socksConnect(t, addr, "", "", socksName("echo.db.p2p")); err != nil || rep != 0x02 {
		t.Fatalf("after the refusal: reply %#x, %v; want 0x02 (access denied)", rep, err)
	}
	want := []string{"db/echo", "early:db/echo"}
	if got := o.dialed(); !slices.Equal(got, want) {
		t.Fatalf("dials %q, want %q", got, want)
	}
}
