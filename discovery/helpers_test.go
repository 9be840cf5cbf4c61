package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// trustSet is a trust list that tests change at run time.
type trustSet struct {
	mu  sync.Mutex
	ids map[identity.PeerID]bool
}

func (s *trustSet) Trusted(id identity.PeerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

func (s *trustSet) set(id identity.PeerID, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[identity.PeerID]bool{}
	}
	s.ids[id] = ok
}

// noiseTrust is the endpoint's view of the same trust list.
func (s *trustSet) noiseTrust(k [32]byte) (identity.PeerID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ok := range s.ids {
		if nk, err := id.PublicKey().NoisePublic(); ok && err == nil && nk == k {
			return id, true
		}
	}
	return identity.PeerID{}, false
}

type testNode struct {
	key   identity.PrivateKey
	id    identity.PeerID
	trust *trustSet
	ep    *transport.Endpoint
	d     *Discovery
}

func newKey(t *testing.T) identity.PrivateKey {
	t.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newNode starts an endpoint with Shared = true on listen and a Discovery
// on it; edit adjusts the discovery config. Both close at cleanup.
func newNode(t *testing.T, listen string, edit func(*Config)) *testNode {
	t.Helper()
	n := prepareNode(t)
	n.start(t, listen, edit)
	return n
}

// prepareNode makes a node's key and trust list without starting it, so
// that a test can set up trust first.
func prepareNode(t *testing.T) *testNode {
	t.Helper()
	n := &testNode{key: newKey(t), trust: &trustSet{}}
	n.id = n.key.PeerID()
	return n
}

func (n *testNode) start(t *testing.T, listen string, edit func(*Config)) {
	t.Helper()
	ep, err := transport.Listen(transport.Config{
		Key: n.key, Listen: []string{listen}, Name: "test", Trust: n.trust.noiseTrust,
		HandshakeTimeout: 5 * time.Second, Shared: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.ep = ep
	cfg := Config{Key: n.key, Endpoint: ep, Trusted: n.trust.Trusted, Logger: testLogger(t)}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	n.d = d
	t.Cleanup(n.close)
}

func (n *testNode) close() {
	n.d.Close()
	n.ep.Close()
}

// port is the endpoint's UDP port.
func (n *testNode) port() int { return n.ep.Addrs()[0].(*net.UDPAddr).Port }

// info is the node's libp2p address on loopback.
func (n *testNode) info(t *testing.T) peer.AddrInfo {
	t.Helper()
	a, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", n.port()))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := toPeer(n.id)
	if err != nil {
		t.Fatal(err)
	}
	return peer.AddrInfo{ID: pid, Addrs: []ma.Multiaddr{a}}
}

// p2pAddr is the node's loopback multiaddr with /p2p/<id>, as config lists take it.
func (n *testNode) p2pAddr(t *testing.T) string {
	t.Helper()
	ai := n.info(t)
	return fmt.Sprintf("%s/p2p/%s", ai.Addrs[0], ai.ID)
}

// trustEachOther makes every node trust every other.
func trustEachOther(nodes ...*testNode) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trust.set(b.id, true)
			}
		}
	}
}

// waitRecord reads n's records until one matches or the timeout passes.
func waitRecord(t *testing.T, n *testNode, timeout time.Duration, match func(Record) bool) (Record, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case r, ok := <-n.d.Records():
			if !ok {
				return Record{}, false
			}
			if match(r) {
				return r, true
			}
		case <-ctx.Done():
			return Record{}, false
		}
	}
}

// testLogger logs to t at debug level when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
