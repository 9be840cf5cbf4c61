package node_test

import (
	"testing"

	"github.com/p2pd/p2pd/node"
)

// TestServiceNamesIgnoreCase: a service is found whatever the case of the
// name a peer asks for, as .p2p host names are.
func TestServiceNamesIgnoreCase(t *testing.T) {
	echo := newEchoBackend(t)
	kA := newKey(t)
	b := startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{{Name: "Echo", Target: echo.Addr(), Allow: []string{"A"}}}})
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{b.peer("B", true)}})
	ctx := testCtx(t)
	for _, name := range []string{"Echo", "echo", "ECHO"} {
		if err := dialEcho(ctx, a, "B", name, randomBytes(1000)); err != nil {
			t.Fatalf("service %q: %v", name, err)
		}
	}
	if err := refusal(ctx, a, "B", "echoo"); err == nil {
		t.Fatal("an unknown service answered")
	}
}
