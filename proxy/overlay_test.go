package proxy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// The overlay's errors as the test overlay returns them, and the kinds the
// test classifier gives them (cmd/p2pd's classifier does the same for
// node's and transport's errors).
var (
	errUnknownPeer    = errors.New("test: unknown peer")
	errUnknownService = errors.New("test: unknown service")
	errDenied         = errors.New("test: access denied")
	errRefused        = errors.New("test: target refused")
	errUnreachable    = errors.New("test: peer unreachable")
)

func classify(err error) proxy.ErrorKind {
	switch {
	case errors.Is(err, errUnknownPeer):
		return proxy.KindUnknownPeer
	case errors.Is(err, errUnknownService):
		return proxy.KindUnknownService
	case errors.Is(err, errDenied):
		return proxy.KindAccessDenied
	case errors.Is(err, errRefused):
		return proxy.KindTargetRefused
	case errors.Is(err, errUnreachable):
		return proxy.KindPeerUnreachable
	}
	return proxy.KindOther
}

// testOverlay is the proxies' seam made real: peer "db" (also known by a
// dotted name and a k51… ID) offers services that are real TCP servers on
// loopback; the services in fail answer with an error instead, as a peer's
// refusal would: at once for DialServiceAnswered, at the first Read for
// DialService (an early stream).
type testOverlay struct {
	targets map[string]string // service -> "host:port"
	fail    map[string]error  // service -> the peer's answer
	hang    string            // a service whose dial waits for ctx

	mu    sync.Mutex // guards dials
	dials []string   // "peer/service", early dials marked "early:"
}

const testPeerID = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"

func newTestOverlay() *testOverlay {
	return &testOverlay{targets: map[string]string{}, fail: map[string]error{
		"nosuch": errUnknownService, "secret": errDenied, "closed": errRefused, "far": errUnreachable,
	}}
}

func (o *testOverlay) ResolvePeer(label string) (string, error) {
	switch strings.ToLower(label) {
	case "db", testPeerID:
		return "db", nil
	case "db.lan":
		return "db.lan", nil
	}
	return "", errUnknownPeer
}

func (o *testOverlay) DialService(ctx context.Context, peer, service string) (proxy.Conn, error) {
	return o.dial(ctx, peer, service, true)
}

func (o *testOverlay) DialServiceAnswered(ctx context.Context, peer, service string) (proxy.Conn, error) {
	return o.dial(ctx, peer, service, false)
}

func (o *testOverlay) dial(ctx context.Context, peer, service string, early bool) (proxy.Conn, error) {
	mark := ""
	if early {
		mark = "early:"
	}
	o.mu.Lock()
	o.dials = append(o.dials, mark+peer+"/"+service)
	o.mu.Unlock()
	if service == o.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := o.fail[service]; err != nil {
		if early {
			return refusedConn{err}, nil
		}
		return nil, err
	}
	addr, ok := o.targets[service]
	if !ok {
		return nil, errUnknownService
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, errRefused
	}
	return proxy.NetConn(c), nil
}

func (o *testOverlay) dialed() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.dials...)
}

// refusedConn is an early stream whose answer was a refusal.
type refusedConn struct{ err error }

func (c refusedConn) Read([]byte) (int, error)    { return 0, c.err }
func (c refusedConn) Write(p []byte) (int, error) { return len(p), nil }
func (c refusedConn) CloseWrite() error           { return nil }
func (c refusedConn) Close() error                { return nil }
func (c refusedConn) Abort()                      {}

// newServer runs a Server over o with cfg (port-0 addresses filled in).
func newServer(t *testing.T, o *testOverlay, cfg proxy.Config) *proxy.Server {
	t.Helper()
	s := proxy.NewServer(o, classify, nil)
	t.Cleanup(func() { s.Close(context.Background()) })
	if err := s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

// socksRequest is a SOCKS5 request in wire form.
func socksRequest(cmd, atyp byte, addr []byte, port uint16) []byte {
	b := []byte{5, cmd, 0, atyp}
	if atyp == 3 {
		b = append(b, byte(len(addr)))
	}
	b = append(b, addr...)
	return binary.BigEndian.AppendUint16(b, port)
}

// socksConnect runs a SOCKS5 handshake over a new connection to proxyAddr
// (with username/password when user is set) and sends req. It returns the
// connection and the reply code, or the error of a step before the reply.
func socksConnect(t *testing.T, proxyAddr, user, pass string, req []byte) (net.Conn, byte, error) {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(failBound))
	method := byte(0)
	if user != "" {
		method = 2
	}
	if _, err := c.Write([]byte{5, 1, method}); err != nil {
		return c, 0, err
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return c, 0, err
	}
	if b != [2]byte{5, method} {
		return c, 0, errors.New("method not accepted: " + string(rune('0'+b[1])))
	}
	if user != "" {
		msg := append([]byte{1, byte(len(user))}, user...)
		msg = append(append(msg, byte(len(pass))), pass...)
		c.Write(msg)
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return c, 0, err
		}
		if b != [2]byte{1, 0} {
			return c, 0, errAuthFailed
		}
	}
	c.Write(req)
	var rep [10]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return c, 0, err
	}
	if rep[0] != 5 || rep[3] != 1 {
		t.Fatalf("reply % x: want version 5 and an IPv4 BND", rep)
	}
	return c, rep[1], nil
}

var errAuthFailed = errors.New("test: socks5 authentication refused")

// socksName is a CONNECT request for a name.
func socksName(name string) []byte { return socksRequest(1, 3, []byte(name), 80) }
