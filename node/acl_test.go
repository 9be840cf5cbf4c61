package node_test

import (
	"errors"
	"testing"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// TestServicesACL is RELIABILITY S4: three peers, a server exposing X
// (A only) and Y (A and B); C is not trusted at all. Allowed streams are
// byte-exact; refused ones never reach the backend.
func TestServicesACL(t *testing.T) {
	x, y := newEchoBackend(t), newEchoBackend(t)
	kA, kB, kC := newKey(t), newKey(t), newKey(t)
	srv := startNode(t, node.Config{
		Name: "S",
		Peers: []node.Peer{
			{Name: "A", ID: kA.PeerID()},
			{Name: "B", ID: kB.PeerID()},
		},
		Services: []node.Service{
			{Name: "X", Target: x.Addr(), Allow: []string{"A"}},
			{Name: "Y", Target: y.Addr(), Allow: []string{"A", "B"}},
		},
	})
	client := func(name string, k identity.PrivateKey) *testNode {
		return startNode(t, node.Config{Name: name, Key: k, Peers: []node.Peer{srv.peer("S", true)}})
	}
	a, b, c := client("A", kA), client("B", kB), client("C", kC)
	ctx := testCtx(t)

	for _, tc := range []struct {
		from *testNode
		svc  string
	}{{a, "X"}, {a, "Y"}, {b, "Y"}} {
		if err := dialEcho(ctx, tc.from, "S", tc.svc, randomBytes(256<<10)); err != nil {
			t.Errorf("%s→%s: %v", tc.from.Name(), tc.svc, err)
		}
	}
	if got := x.Accepted(); got != 1 {
		t.Fatalf("backend X accepted %d connections after A→X, want 1", got)
	}
	if got := y.Accepted(); got != 2 {
		t.Fatalf("backend Y accepted %d connections after A→Y and B→Y, want 2", got)
	}

	// B is trusted but not on X's allow list: an access-denied answer.
	err := refusal(ctx, b, "S", "X")
	var se *transport.StatusError
	if !errors.As(err, &se) || se.Status != transport.StatusAccessDenied {
		t.Errorf("B→X: err = %v, want a StatusError %q", err, transport.StatusAccessDenied)
	}
	// C is not trusted: its handshake is refused, so no service answers.
	for _, svc := range []string{"X", "Y"} {
		conn, err := c.DialService(ctx, "S", svc)
		if err == nil {
			conn.Abort()
			t.Errorf("C→%s: stream opened; an untrusted peer must not get a session", svc)
		} else if !errors.Is(err, transport.ErrHandshake) {
			t.Errorf("C→%s: err = %v, want %v", svc, err, transport.ErrHandshake)
		}
	}
	// An unknown service is its own status.
	err = refusal(ctx, a, "S", "nope")
	if !errors.As(err, &se) || se.Status != transport.StatusUnknownService {
		t.Errorf("A→nope: err = %v, want a StatusError %q", err, transport.StatusUnknownService)
	}

	if got := x.Accepted(); got != 1 {
		t.Errorf("backend X accepted %d connections, want 1: a refused stream reached the target", got)
	}
	if got := y.Accepted(); got != 2 {
		t.Errorf("backend Y accepted %d connections, want 2: a refused stream reached the target", got)
	}
	for _, s := range srv.Sessions() {
		if s.Peer == "C" || s.PeerID == kC.PeerID().String() {
			t.Errorf("server has a session with untrusted C: %+v", s)
		}
	}
	for _, st := range srv.Services() {
		want := map[string]uint64{"X": 1, "Y": 2}[st.Name]
		if st.Total != want || st.Active != 0 {
			t.Errorf("service %s: total %d active %d, want total %d active 0", st.Name, st.Total, st.Active, want)
		}
	}
}
