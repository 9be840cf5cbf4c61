package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/transport"
)

// TestRestartedPeerResetsStaleSessions: a peer's sessions from before it
// restarted (the current one, and a superseded one still finishing a
// stream) are closed as soon as a session from its new instance arrives,
// not left to the idle timeout with their streams hanging. The peer's old
// endpoint stands in for the dead process and sees the close code.
func TestRestartedPeerResetsStaleSessions(t *testing.T) {
	kx, ky := mustKey(t), mustKey(t)
	x, ctx := runEchoNode(t, kx, ky)

	nx, _ := kx.Public().NoisePublic()
	trustX := func(s [32]byte) (identity.PeerID, bool) { return kx.PeerID(), s == nx }
	endpoint := func(instance uint64) *transport.Endpoint {
		ep, err := transport.Listen(transport.Config{Key: ky, Listen: []string{"127.0.0.1:0"}, Instance: instance, Trust: trustX})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	dial := func(ep *transport.Endpoint) *transport.Session {
		s, err := ep.Dial(ctx, kx.PeerID(), x.ListenAddrs()[0])
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := endpoint(1)
	retiring := dial(before)
	st, err := retiring.OpenStream(ctx, transport.Request{Kind: transport.KindTCP, Service: "echo"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("keeps the superseded session busy"))
	first := time.Now()
	current := dial(before) // same instance: supersedes the first, which retires
	waitUntil(t, "X to adopt the second session", func() bool {
		ss := x.Sessions()
		return len(ss) == 1 && ss[0].Established.After(first)
	})
	select {
	case <-retiring.Done():
		t.Fatal("the superseded session closed while its stream was open")
	default:
	}

	dial(endpoint(2)) // the peer "restarted"
	for name, s := range map[string]*transport.Session{"current": current, "retiring": retiring} {
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("the %s session from before the restart is still open", name)
		}
		var ce *transport.CloseError
		if err := s.Err(); !errors.As(err, &ce) || !ce.Remote || ce.Code != transport.CodeDuplicate {
			t.Errorf("the %s session ended with %v; want X to close it as superseded", name, err)
		}
	}
}

// runEchoNode runs node X with key kx, which knows peer Y (key ky) by ID
// and offers it an echo service, until the test ends; ctx ends with it.
func runEchoNode(t *testing.T, kx, ky identity.PrivateKey) (*Node, context.Context) {
	t.Helper()
	echo := testnet.NewEcho(t)
	x, err := New(Config{Key: kx, Name: "X", Listen: []string{"127.0.0.1:0"},
		Peers:    []Peer{{Name: "Y", ID: ky.PeerID()}},
		Services: []Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"Y"}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var run sync.WaitGroup
	run.Go(func() { x.Run(ctx) })
	t.Cleanup(func() { cancel(); run.Wait() })
	return x, ctx
}

func mustKey(t *testing.T) identity.PrivateKey {
	t.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
