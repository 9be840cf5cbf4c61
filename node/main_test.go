package node_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/proxy"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// failBound bounds every wait in these tests. It is a failure bound only:
// no test asserts on how fast anything happens.
const failBound = 15 * time.Second

func newKey(t *testing.T) identity.PrivateKey {
	t.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testNode is a node running on loopback; its Run goroutine is waited for
// by stop, which t.Cleanup also calls.
type testNode struct {
	*node.Node
	t      *testing.T
	key    identity.PrivateKey
	addr   string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startNode creates a node from cfg (Listen defaults to 127.0.0.1:0) and runs it.
func startNode(t *testing.T, cfg node.Config) *testNode {
	t.Helper()
	tn := newNode(t, cfg)
	tn.run()
	return tn
}

// newNode creates a node without running it.
func newNode(t *testing.T, cfg node.Config) *testNode {
	t.Helper()
	if cfg.Key.IsZero() {
		cfg.Key = newKey(t)
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("node.New(%s): %v", cfg.Name, err)
	}
	tn := &testNode{Node: n, t: t, key: cfg.Key, addr: n.ListenAddrs()[0]}
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) run() {
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel, tn.done = cancel, make(chan error, 1)
	go func() { tn.done <- tn.Run(ctx) }()
}

// stop cancels Run and waits for it to return; a node never run is closed.
func (tn *testNode) stop() {
	tn.once.Do(func() {
		if tn.cancel == nil {
			tn.Close()
			return
		}
		tn.cancel()
		select {
		case err := <-tn.done:
			if err != nil {
				tn.t.Errorf("node %s: Run returned %v", tn.Name(), err)
			}
		case <-time.After(failBound):
			tn.t.Errorf("node %s: Run did not return within %v of cancel", tn.Name(), failBound)
			tn.Close()
		}
	})
}

// peer returns the trust-list entry for tn; with withAddr it carries tn's address.
func (tn *testNode) peer(name string, withAddr bool) node.Peer {
	p := node.Peer{Name: name, ID: tn.ID()}
	if withAddr {
		p.Addresses = []string{tn.addr}
	}
	return p
}

// alwaysOn is p with AlwaysOn set: the maintainer keeps a session to it.
func alwaysOn(p node.Peer) node.Peer {
	p.AlwaysOn = true
	return p
}

// echoBackend is the shared loopback echo server of the tests.
type echoBackend = testnet.Echo

func newEchoBackend(t *testing.T) *echoBackend { return testnet.NewEcho(t) }

// randomBytes returns n random bytes (crypto/rand.Read does not fail).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// deadliner is what *transport.Stream offers to bound a blocked read.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

func bound(c proxy.Conn, d time.Duration) {
	if dl, ok := c.(deadliner); ok {
		dl.SetReadDeadline(time.Now().Add(d))
		dl.SetWriteDeadline(time.Now().Add(d))
	}
}

// echoRoundTrip writes data, half-closes, reads the echo to EOF and
// compares SHA-256 digests.
func echoRoundTrip(c proxy.Conn, data []byte) error {
	bound(c, failBound)
	werr := make(chan error, 1)
	go func() {
		if _, err := c.Write(data); err != nil {
			werr <- err
			return
		}
		werr <- c.CloseWrite()
	}()
	got, rerr := io.ReadAll(c)
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read after %d bytes: %w", len(got), rerr)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		return fmt.Errorf("echo differs: sent %d bytes, got %d (SHA-256 mismatch)", len(data), len(got))
	}
	return c.Close()
}

// refusal opens a stream to svc on peer and returns its refusal: the error
// of DialService, or, for a stream opened early, that of its first Read.
func refusal(ctx context.Context, n *testNode, peer, svc string) error {
	c, err := n.DialService(ctx, peer, svc)
	if err != nil {
		return err
	}
	defer c.Abort()
	bound(c, failBound)
	_, err = c.Read(make([]byte, 1))
	return err
}

// dialEcho opens a stream to svc on peer and runs one echo round trip.
func dialEcho(ctx context.Context, n *testNode, peer, svc string, data []byte) error {
	c, err := n.DialService(ctx, peer, svc)
	if err != nil {
		return err
	}
	if err := echoRoundTrip(c, data); err != nil {
		c.Abort()
		return err
	}
	return nil
}

// waitFor polls cond until it holds or failBound passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, failBound, what, cond)
}

// waitWithin polls cond until it holds or d passes.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), failBound)
	t.Cleanup(cancel)
	return ctx
}

func peerState(n *testNode, name string) (node.PeerStatus, bool) {
	for _, p := range n.Peers() {
		if p.Name == name {
			return p, true
		}
	}
	return node.PeerStatus{}, false
}

// isEOFOrNil reports a read that ended cleanly, which an aborted stream must not.
func isEOFOrNil(err error) bool { return err == nil || errors.Is(err, io.EOF) }
