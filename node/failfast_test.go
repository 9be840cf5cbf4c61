package node_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/node"
)

// failFastBound is what the tests allow for a refusal the node promises
// within about one second (failFastWait is 750 ms): generous, since the
// machine may be loaded; the time taken is logged.
const failFastBound = 3 * time.Second

// refuseFast opens a stream to B's echo on a and requires a quick refusal
// that is a *node.PeerError naming B, on one line.
func refuseFast(t *testing.T, a *testNode, want string) *node.PeerError {
	t.Helper()
	start := time.Now()
	c, err := a.DialService(testCtx(t), "B", "echo")
	took := time.Since(start)
	if err == nil {
		c.Abort()
		t.Fatal("a stream to the crashed B was opened")
	}
	var pe *node.PeerError
	if !errors.As(err, &pe) {
		t.Fatalf("refusal %q (%T) is not a *node.PeerError", err, err)
	}
	if took > failFastBound {
		t.Fatalf("refused after %v, want within %v: %v", took, failFastBound, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "peer B (12D3KooW…") || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
		t.Fatalf("refusal %q: want one line that starts with the peer and says %q", msg, want)
	}
	t.Logf("refused in %v: %s", took.Round(time.Millisecond), msg)
	return pe
}

// TestFailFastAfterCrash: B is killed (no close sent). A notices within the
// idle timeout; from then on new streams to B are refused at once with why,
// not after a dial each; once B is back, a stream works and is byte-exact.
func TestFailFastAfterCrash(t *testing.T) {
	kA := newKey(t)
	echo := newEchoBackend(t)
	aAddr := freeUDPAddr(t)
	b := startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID(), Addresses: []string{aAddr}}},
		Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}})
	a := startNode(t, node.Config{Name: "A", Key: kA, Listen: []string{aAddr}, Peers: []node.Peer{b.peer("B", true)}})
	if err := dialEcho(testCtx(t), a, "B", "echo", randomBytes(4096)); err != nil {
		t.Fatalf("A→B before the crash: %v", err)
	}

	node.Crash(b.Node)
	b.stop()
	crashed := time.Now()
	waitWithin(t, 10*time.Second, "A to notice that B crashed", func() bool { return len(a.Sessions()) == 0 })
	t.Logf("A noticed the crash after %v", time.Since(crashed).Round(10*time.Millisecond))

	refuseFast(t, a, "unreachable: its session timed out")
	refuseFast(t, a, "unreachable")

	// The redial that began when the session ended fails in its own time;
	// then the refusal says what the dial met, address by address.
	waitFor(t, "A's redial to fail", func() bool {
		ps, _ := peerState(a, "B")
		return strings.Contains(ps.LastError, "no address answered")
	})
	pe := refuseFast(t, a, "unreachable: no address answered (tried 1: "+b.addr+": ")
	if pe.Reason != node.ReasonUnreachable {
		t.Fatalf("reason %q, want %q", pe.Reason, node.ReasonUnreachable)
	}

	pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, _, err := a.Ping(pctx, "B")
	if took := time.Since(start); err == nil || took > failFastBound || !strings.HasPrefix(err.Error(), "peer B (") {
		t.Fatalf("ping to the crashed B: %v after %v; want a sentence naming B within %v", err, took, failFastBound)
	}

	// B comes back (it dials A, whose address it has). The refusals until
	// A has the session are quick; the first stream after works.
	b2 := startNode(t, node.Config{Name: "B", Key: b.key, Listen: []string{b.addr},
		Peers:    []node.Peer{{Name: "A", ID: kA.PeerID(), Addresses: []string{aAddr}}},
		Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}})
	_ = b2
	deadline := time.Now().Add(failBound)
	for {
		start := time.Now()
		err := dialEcho(testCtx(t), a, "B", "echo", randomBytes(64<<10))
		if err == nil {
			break
		}
		var pe *node.PeerError
		if !errors.As(err, &pe) || time.Since(start) > failFastBound {
			t.Fatalf("A→restarted B: %v after %v; want a quick *node.PeerError until it works", err, time.Since(start))
		}
		if time.Now().After(deadline) {
			t.Fatalf("A→restarted B still failing after %v: %v", failBound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNoAddressSentence: a peer with no address and no discovery is refused
// at once with a sentence that says what to add.
func TestNoAddressSentence(t *testing.T) {
	a := startNode(t, node.Config{Name: "A", Peers: []node.Peer{{Name: "ghost", ID: newKey(t).PeerID()}}})
	_, err := a.DialService(testCtx(t), "ghost", "echo")
	var pe *node.PeerError
	if !errors.As(err, &pe) || pe.Reason != node.ReasonNoAddress {
		t.Fatalf("DialService to a peer with no address: %v; want a *node.PeerError with reason %q", err, node.ReasonNoAddress)
	}
	if msg := err.Error(); !strings.Contains(msg, "peer ghost (") || !strings.Contains(msg, "add addresses") || strings.Contains(msg, "relay") {
		t.Fatalf("error %q: want it to name ghost and say to add addresses, and no word of relays", msg)
	}
}

// TestMalformedPeerID: an ID one character short is reported as such, not
// looked up as a name.
func TestMalformedPeerID(t *testing.T) {
	b := newKey(t).PeerID()
	a := startNode(t, node.Config{Name: "A", Peers: []node.Peer{{Name: "B", ID: b}}})
	short := b.String()[:len(b.String())-1]
	_, _, err := a.Ping(testCtx(t), short)
	if !errors.Is(err, node.ErrUnknownPeer) || !strings.Contains(err.Error(), "1 character too short") {
		t.Fatalf("ping %q: %v; want an unknown-peer error that says the ID is 1 character too short", short, err)
	}
	_, err = a.DialService(testCtx(t), b.String()[:20]+"0"+b.String()[21:], "echo")
	if err == nil || !strings.Contains(err.Error(), "character '0' at position 21 is not base58") {
		t.Fatalf("an ID with a 0 in it: %v; want the bad character named", err)
	}
}

// TestStreamRightAfterCrash: a stream opened early on the session of a peer
// that has just been killed, before anything noticed, fails within about
// a second (the session is probed when it stays silent), not at the idle
// timeout; the next stream is refused at once with why.
func TestStreamRightAfterCrash(t *testing.T) {
	echo := newEchoBackend(t)
	kA := newKey(t)
	b := startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}})
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{b.peer("B", true)}})
	if err := dialEcho(testCtx(t), a, "B", "echo", randomBytes(4096)); err != nil {
		t.Fatalf("A→B before the crash: %v", err)
	}
	node.Crash(b.Node)
	b.stop()
	start := time.Now()
	err := dialEcho(testCtx(t), a, "B", "echo", randomBytes(4096))
	took := time.Since(start)
	if err == nil || took > failFastBound {
		t.Fatalf("a stream right after B crashed: %v after %v; want a failure within %v", err, took, failFastBound)
	}
	t.Logf("the stream failed after %v: %v", took.Round(time.Millisecond), err)
	refuseFast(t, a, "unreachable: its session stopped answering (no pong within")
}

// fakeDiscovery answers lookups with fixed addresses, as libp2p's peer
// store would; dht says whether the node is in the DHT.
type fakeDiscovery struct {
	addrs []string
	dht   bool
}

func (d fakeDiscovery) FindPeer(context.Context, identity.PeerID) ([]string, error) {
	return d.addrs, nil
}
func (fakeDiscovery) Learned(identity.PeerID, string)     {}
func (d fakeDiscovery) DHTEnabled() bool                  { return d.dht }
func (fakeDiscovery) Forget(identity.PeerID)              {}
func (fakeDiscovery) HasRelays() bool                     { return false }
func (fakeDiscovery) DirectReason(identity.PeerID) string { return "" }
func (fakeDiscovery) Close() error                        { return nil }
func (fakeDiscovery) RelayPath(identity.PeerID) (string, bool) {
	return "", false
}
func (fakeDiscovery) OpenRelayed(context.Context, identity.PeerID) (net.Conn, error) {
	return nil, errors.New("fake: no relays")
}

// TestFoundBy: what a lookup returns is shown as found by the peer store,
// or by the DHT when the node is in it; an address mDNS reported keeps
// its own source.
func TestFoundBy(t *testing.T) {
	for _, tt := range []struct {
		dht  bool
		want string
	}{{false, "mdns,peerstore"}, {true, "dht,mdns"}} {
		echo := newEchoBackend(t)
		kA := newKey(t)
		b := startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
			Services: []node.Service{{Name: "echo", Target: echo.Addr(), Allow: []string{"A"}}}})
		a := newNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{b.peer("B", false)}})
		a.SetDiscovery(fakeDiscovery{addrs: []string{b.addr, "127.0.0.1:9"}, dht: tt.dht})
		a.run()
		a.AddAddresses(b.ID(), node.SourceMDNS, []string{"127.0.0.1:9"})
		if err := dialEcho(testCtx(t), a, "B", "echo", randomBytes(1024)); err != nil {
			t.Fatalf("A→B found by lookup: %v", err)
		}
		ps, _ := peerState(a, "B")
		got := strings.Join(slices.DeleteFunc(ps.Sources, func(s string) bool { return s == node.SourceLearned }), ",")
		if got != tt.want {
			t.Errorf("dht %v: FOUND-BY %q, want %q (sources %v)", tt.dht, got, tt.want, ps.Sources)
		}
	}
}
