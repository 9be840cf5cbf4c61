package proxy_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// refusingFwdDialer fails service "down" at once, as a node does for a peer
// known to be down, and opens service "denied" early with a refusal that
// comes with the first Read, as the far side's answer does. Service "late"
// is refused the way a QUIC stream can be: writes fail first (the peer's
// STOP_SENDING), the answer comes a moment later, and an abort in between
// would cut the Read with an error of this side's own.
type refusingFwdDialer struct{}

func (refusingFwdDialer) DialService(_ context.Context, _, service string) (proxy.Conn, error) {
	switch service {
	case "down":
		return nil, errUnreachable
	case "late":
		return &lateRefusedConn{aborted: make(chan struct{})}, nil
	}
	return refusedConn{errDenied}, nil
}

type lateRefusedConn struct {
	once    sync.Once
	aborted chan struct{}
}

func (c *lateRefusedConn) Read([]byte) (int, error) {
	select {
	case <-time.After(50 * time.Millisecond):
		return 0, errDenied
	case <-c.aborted:
		return 0, errors.New("test: read aborted by this side")
	}
}
func (c *lateRefusedConn) Write([]byte) (int, error) {
	return 0, errors.New("test: stream stopped by peer")
}
func (c *lateRefusedConn) CloseWrite() error { return nil }
func (c *lateRefusedConn) Close() error      { c.Abort(); return nil }
func (c *lateRefusedConn) Abort()            { c.once.Do(func() { close(c.aborted) }) }

// TestForwardRefusalsCountedAndLogged: connections that get no stream, by
// this node's refusal or the far side's, end for the client without a
// byte, are counted by kind, and are logged once per kind (rate-limited).
// The count is there by the time the client sees its connection end.
func TestForwardRefusalsCountedAndLogged(t *testing.T) {
	var logs logBuffer
	start := func(service string) *proxy.Forwarder {
		f := proxy.NewForwarder(refusingFwdDialer{}, slog.New(slog.NewTextHandler(&logs, nil)))
		t.Cleanup(func() { f.Close(context.Background()) })
		f.SetClassifier(classify)
		if err := f.Apply([]proxy.Forward{fwd("127.0.0.1:0", service)}); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		f    *proxy.Forwarder
		kind string
	}{{start("down"), "peer_unreachable"}, {start("denied"), "access_denied"}, {start("late"), "access_denied"}} {
		addr := addrOf(t, tc.f, "127.0.0.1:0")
		for i := range 3 {
			// The reset may come before connect returns: that is a refusal too.
			if c, err := net.Dial("tcp", addr); err == nil {
				c.SetDeadline(time.Now().Add(failBound))
				c.Write([]byte("hello"))
				got, _ := io.ReadAll(c)
				c.Close()
				if len(got) != 0 {
					t.Fatalf("%s: the client read %q from a refused connection", tc.kind, got)
				}
			}
			if st := tc.f.Stats(); len(st) != 1 || st[0].Errors[tc.kind] != uint64(i+1) {
				t.Fatalf("%s: stats %+v once the client's connection %d ended; want %d errors of that kind", tc.kind, st, i+1, i+1)
			}
		}
		line := `level=INFO msg="forward: connection refused" listen=127.0.0.1:0 peer=db service=` + tc.f.Stats()[0].Service + ` reason=` + tc.kind
		if n := strings.Count(logs.String(), line); n != 1 {
			t.Fatalf("%d log lines %q for 3 refusals; want 1 (rate-limited)\n%s", n, line, logs.String())
		}
	}
}
