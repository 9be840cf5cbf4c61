package node_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// TestUDPFlows: a udp service answers flows over QUIC (datagrams, large
// ones on the stream) and over the TCP carrier; a tcp dial to a udp
// service and a flow to a tcp service are refused; the service's node
// lists the flow with its counters and drops it when the flow idles out.
func TestUDPFlows(t *testing.T) {
	target := testnet.NewUDPEcho(t).String()
	kA := newKey(t)
	tcpPort := freeTCPPort(t)
	b := startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{
			{Name: "uecho", Target: target, Protocol: "udp", Allow: []string{"A"}, IdleTimeout: 500 * time.Millisecond},
			{Name: "tcpsvc", Target: "127.0.0.1:1", Allow: []string{"A"}},
			{Name: "closed", Target: target, Protocol: "udp", Allow: []string{}},
		},
		Transport: transport.Config{ListenTCP: []string{"127.0.0.1:" + strconv.Itoa(tcpPort)}}})
	sizes := []int{1, 64, 1000, 1200, 3000, 20000, 65000}
	for _, c := range []struct {
		name, carrier string
		peer          node.Peer
	}{
		{"quic", transport.CarrierQUIC, node.Peer{Name: "B", ID: b.ID(), Addresses: []string{b.addr}}},
		{"tcp", transport.CarrierTCP, node.Peer{Name: "B", ID: b.ID(), Addresses: []string{"127.0.0.1:" + strconv.Itoa(tcpPort)}, Transport: node.TransportTCP}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{c.peer}})
			ctx := testCtx(t)
			var before uint64 // the quic run's datagrams, in the tcp run
			if c := b.DatagramCounts(); len(c) == 1 {
				before = c[0].Sent
			}
			f, err := a.DialFlow(ctx, "B", "uecho")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := sessionCarrier(a, "B"); got != c.carrier {
				t.Fatalf("carrier %q", got)
			}
			testnet.EchoDatagrams(t, f, sizes)
			var info node.FlowInfo
			waitFor(t, "B to list the flow", func() bool {
				for _, fi := range b.Flows() {
					if fi.Stats.Received == uint64(len(sizes)) && fi.Stats.Sent == uint64(len(sizes)) {
						info = fi
						return true
					}
				}
				return false
			})
			if info.Peer != "A" || info.Service != "uecho" || info.Stats.Sent != uint64(len(sizes)) {
				t.Fatalf("B lists %+v", info)
			}
			if c.carrier == transport.CarrierQUIC && (!info.Stats.Datagrams || info.Stats.Framed == 0 || info.Stats.Framed == info.Stats.Sent) {
				t.Fatalf("over QUIC: %+v; want small datagrams in QUIC datagrams, large ones on the stream", info.Stats)
			}
			// Refusals: access denied; a flow to a tcp service is a bad request.
			if _, err := a.DialFlow(ctx, "B", "closed"); !statusIs(err, transport.StatusAccessDenied) {
				t.Fatalf("flow to a denied service: %v", err)
			}
			if _, err := a.DialFlow(ctx, "B", "tcpsvc"); !statusIs(err, transport.StatusBadRequest) {
				t.Fatalf("flow to a tcp service: %v", err)
			}
			if err := refusal(ctx, a, "B", "uecho"); !statusIs(err, transport.StatusBadRequest) {
				t.Fatalf("tcp stream to a udp service: %v", err)
			}
			// The service side idles the flow out after 500 ms; the
			// client's flow ends with it.
			select {
			case <-f.(*transport.Flow).Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the idle flow did not end")
			}
			waitFor(t, "B to drop the idle flow", func() bool { return len(b.Flows()) == 0 })
			// The counters outlive the flow, and the next flow adds to them.
			n := before + uint64(len(sizes))
			wantDatagrams(t, b.Node, n, n)
			f2, err := a.DialFlow(ctx, "B", "uecho") // comes back
			if err != nil {
				t.Fatal(err)
			}
			testnet.EchoDatagrams(t, f2, sizes[:2])
			waitFor(t, "B to count the second flow's datagrams", func() bool {
				c := b.DatagramCounts()
				return len(c) == 1 && c[0].Sent == n+2
			})
			wantDatagrams(t, b.Node, n+2, n+2)
			f2.Close()
		})
	}
}

// wantDatagrams checks n's datagram counters: one entry, A's flows to
// uecho, with received and sent and nothing dropped.
func wantDatagrams(t *testing.T, n *node.Node, received, sent uint64) {
	t.Helper()
	c := n.DatagramCounts()
	if len(c) != 1 || c[0].Peer != "A" || c[0].Service != "uecho" || c[0].Received != received || c[0].Sent != sent || len(c[0].Dropped) != 0 {
		t.Fatalf("datagram counters %+v; want A's flows to uecho with %d received, %d sent, none dropped", c, received, sent)
	}
}

func statusIs(err error, s transport.Status) bool {
	var se *transport.StatusError
	return errors.As(err, &se) && se.Status == s
}

// TestFlowsPerPeerBounded: a trusted peer holds at most MaxFlowsPerPeer
// udp flows (each a UDP socket on this node); the next is answered
// overloaded, and closing one makes room again.
func TestFlowsPerPeerBounded(t *testing.T) {
	target := testnet.NewUDPEcho(t).String()
	kA := newKey(t)
	b := startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{{Name: "uecho", Target: target, Protocol: "udp", Allow: []string{"A"}}}})
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{b.peer("B", true)}})
	ctx := testCtx(t)
	flows := make([]proxy.Flow, 0, node.MaxFlowsPerPeer)
	defer func() {
		for _, f := range flows {
			f.Close()
		}
	}()
	for i := range node.MaxFlowsPerPeer {
		f, err := a.DialFlow(ctx, "B", "uecho")
		if err != nil {
			t.Fatalf("flow %d of %d: %v", i+1, node.MaxFlowsPerPeer, err)
		}
		flows = append(flows, f)
	}
	if _, err := a.DialFlow(ctx, "B", "uecho"); !statusIs(err, transport.StatusOverloaded) {
		t.Fatalf("flow %d: %v, want overloaded", node.MaxFlowsPerPeer+1, err)
	}
	flows[0].Close()
	flows = flows[1:]
	waitFor(t, "B to let go of the closed flow", func() bool { return len(b.Flows()) < node.MaxFlowsPerPeer })
	f, err := a.DialFlow(ctx, "B", "uecho")
	if err != nil {
		t.Fatalf("after closing one: %v", err)
	}
	flows = append(flows, f)
	testnet.EchoDatagrams(t, f, []int{100})
}

// TestIdleInboundFlowCost: a peer's flow to a udp service that waits for its
// target holds no read buffer of its own on the service's node (each held
// 64 KiB, so a peer's 1,024 flows 64 MiB), and the flows still carry
// datagrams both ways afterwards.
func TestIdleInboundFlowCost(t *testing.T) {
	target := testnet.NewUDPEcho(t).String()
	kA := newKey(t)
	b := startNode(t, node.Config{Name: "B", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{{Name: "uecho", Target: target, Protocol: "udp", Allow: []string{"A"}}}})
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{b.peer("B", true)}})
	testnet.EchoDatagrams(t, mustFlow(t, a), []int{10}) // the session is up
	before := testnet.HeapInUse()
	const n = 500
	flows := make([]proxy.Flow, n)
	for i := range flows {
		flows[i] = mustFlow(t, a)
	}
	defer func() {
		for _, f := range flows {
			f.Close()
		}
	}()
	waitFor(t, "B to hold every flow", func() bool { return len(b.Flows()) >= n })
	time.Sleep(50 * time.Millisecond) // each flow's target reader waiting
	perFlow := (int64(testnet.HeapInUse()) - int64(before)) / n
	t.Logf("%d idle flows: %d bytes of heap each (both nodes)", n, perFlow)
	if perFlow > 48<<10 { // 88 KiB with a buffer per flow
		t.Fatalf("an idle flow costs %d bytes of heap; want under 48 KiB", perFlow)
	}
	for _, f := range flows[:10] {
		testnet.EchoDatagrams(t, f, []int{1, 1000, 60000})
	}
}

// mustFlow opens a flow from a to B's uecho.
func mustFlow(t *testing.T, a *testNode) proxy.Flow {
	t.Helper()
	f, err := a.DialFlow(testCtx(t), "B", "uecho")
	if err != nil {
		t.Fatal(err)
	}
	return f
}
