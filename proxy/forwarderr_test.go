package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// refusingFwdDialer fails service "down" at once, as a node does for a peer
// known to be down, and opens service "denied" early with a refusal that
// comes with the first Read, as the far side's answer does.
type refusingFwdDialer struct{}

func (refusingFwdDialer) DialService(_ context.Context, _, service string) (proxy.Conn, error) {
	if service == "down" {
		return nil, errUnreachable
	}
	return refusedConn{errDenied}, nil
}

// TestForwardRefusalsCountedAndLogged: connections that get no stream, by
// this node's refusal or the far side's, end for the client without a
// byte, are counted by kind, and are logged once per kind (rate-limited).
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
	}{{start("down"), "peer_unreachable"}, {start("denied"), "access_denied"}} {
		addr := addrOf(t, tc.f, "127.0.0.1:0")
		for range 3 {
			// The reset may come before connect returns: that is a refusal too.
			c, err := net.Dial("tcp", addr)
			if err != nil {
				continue
			}
			c.SetDeadline(time.Now().Add(failBound))
			c.Write([]byte("hello"))
			got, _ := io.ReadAll(c)
			c.Close()
			if len(got) != 0 {
				t.Fatalf("%s: the client read %q from a refused connection", tc.kind, got)
			}
		}
		deadline := time.Now().Add(failBound)
		for {
			st := tc.f.Stats()
			if len(st) == 1 && st[0].Errors[tc.kind] == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: stats %+v; want 3 errors of that kind", tc.kind, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		line := `level=INFO msg="forward: connection refused" listen=127.0.0.1:0 peer=db service=` + tc.f.Stats()[0].Service + ` reason=` + tc.kind
		if n := strings.Count(logs.String(), line); n != 1 {
			t.Fatalf("%d log lines %q for 3 refusals; want 1 (rate-limited)\n%s", n, line, logs.String())
		}
	}
}
