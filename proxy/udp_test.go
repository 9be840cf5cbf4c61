package proxy_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// echoFlow is a flow to an in-process udp service that answers each
// datagram with "<service>:" and the datagram.
type echoFlow struct {
	service string
	in      chan []byte
	done    chan struct{}
	once    sync.Once
}

func (f *echoFlow) ReadDatagram(b []byte) (int, error) {
	select {
	case d := <-f.in:
		return copy(b, d), nil
	case <-f.done:
		return 0, io.EOF
	}
}

func (f *echoFlow) WriteDatagram(b []byte) error {
	select {
	case <-f.done:
		return io.EOF
	case f.in <- append([]byte(f.service+":"), b...):
		return nil
	}
}

func (f *echoFlow) Close() error               { f.once.Do(func() { close(f.done) }); return nil }
func (f *echoFlow) Dropped() map[string]uint64 { return nil }

// flowOverlay adds udp flows to the test overlay: service "uecho" echoes;
// the others refuse as testOverlay's do.
type flowOverlay struct {
	*testOverlay
	flows atomic.Int64 // flows dialed
	live  sync.Map     // *echoFlow → struct{}
}

func (o *flowOverlay) DialFlow(ctx context.Context, peer, service string) (proxy.Flow, error) {
	o.flows.Add(1)
	if err := o.fail[service]; err != nil {
		return nil, err
	}
	if service != "uecho" && service != "other" {
		return nil, errUnknownService
	}
	f := &echoFlow{service: service, in: make(chan []byte, 64), done: make(chan struct{})}
	o.live.Store(f, struct{}{})
	return f, nil
}

// udpRoundTrip sends d from c and returns the answer.
func udpRoundTrip(t *testing.T, c *net.UDPConn, to netip.AddrPort, d []byte) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.WriteToUDPAddrPort(d, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 70000)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no answer to a %d-byte datagram: %v", len(d), err)
	}
	return buf[:n]
}

func newUDPClient(t *testing.T) *net.UDPConn {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestUDPForward: each client address of a udp forward is one flow; 1,000
// datagrams of varied sizes and a 3,000-byte one come back byte-exact; an
// idle flow ends and the client's next datagram makes a new one; a refused
// dial drops the datagrams it held and is counted.
func TestUDPForward(t *testing.T) {
	o := &flowOverlay{testOverlay: newTestOverlay()}
	f := proxy.NewForwarder(o, nil)
	t.Cleanup(func() { f.Close(context.Background()) })
	fwds := []proxy.Forward{
		{Listen: "127.0.0.1:0", Peer: "db", Service: "uecho", Protocol: proxy.ProtocolUDP, IdleTimeout: 300 * time.Millisecond},
		{Listen: "127.0.0.2:0", Peer: "db", Service: "secret", Protocol: proxy.ProtocolUDP},
	}
	if err := f.Apply(fwds); err != nil {
		t.Fatal(err)
	}
	to := f.Addr("127.0.0.1:0").(*net.UDPAddr).AddrPort()
	a, b := newUDPClient(t), newUDPClient(t)
	for i := range 1000 {
		c := a
		if i%2 == 1 {
			c = b
		}
		d := bytes.Repeat([]byte{byte(i)}, 16+i%1100)
		if got := udpRoundTrip(t, c, to, d); !bytes.Equal(got, append([]byte("uecho:"), d...)) {
			t.Fatalf("datagram %d: got %d bytes, not the %d sent", i, len(got), len(d))
		}
	}
	big := bytes.Repeat([]byte("x"), 3000)
	if got := udpRoundTrip(t, a, to, big); !bytes.Equal(got, append([]byte("uecho:"), big...)) {
		t.Fatalf("a 3,000-byte datagram came back as %d bytes", len(got))
	}
	if n := o.flows.Load(); n != 2 {
		t.Fatalf("%d flows dialed for two clients", n)
	}
	flows := f.Flows()
	if len(flows) != 2 || flows[0].Sent+flows[1].Sent != 1001 || flows[0].Received+flows[1].Received != 1001 {
		t.Fatalf("flows: %+v", flows)
	}
	// Idle: both flows end, and a new datagram makes a new flow.
	waitUntil(t, "the idle flows to end", func() bool { return len(f.Flows()) == 0 })
	if got := udpRoundTrip(t, a, to, []byte("again")); string(got) != "uecho:again" {
		t.Fatalf("after the idle end: %q", got)
	}
	if n := o.flows.Load(); n != 3 {
		t.Fatalf("%d flows dialed; want a third after the idle end", n)
	}
	// A refused service: the datagram is dropped and counted; nothing comes back.
	denied := f.Addr("127.0.0.2:0").(*net.UDPAddr).AddrPort()
	a.WriteToUDPAddrPort([]byte("knock"), denied)
	a.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, _, err := a.ReadFromUDPAddrPort(make([]byte, 100)); err == nil {
		t.Fatal("a refused flow answered")
	}
	var stats proxy.ForwardStats
	for _, s := range f.Stats() {
		if s.Service == "uecho" {
			stats = s
		}
	}
	if stats.Protocol != proxy.ProtocolUDP || stats.Total != 3 || stats.Active != 1 {
		t.Fatalf("forward stats %+v", stats)
	}
	// Reload without the forward: its socket closes.
	if err := f.Apply(fwds[1:]); err != nil {
		t.Fatal(err)
	}
	if f.Addr("127.0.0.1:0") != nil {
		t.Fatal("a dropped udp forward is still listed")
	}
	n := 0
	o.live.Range(func(k, _ any) bool {
		select {
		case <-k.(*echoFlow).done:
		default:
			n++
		}
		return true
	})
	if n != 0 {
		t.Fatalf("%d flows still open after their forward went away", n)
	}
}

// socksAssociate runs a SOCKS5 UDP ASSOCIATE on a new connection to addr
// and returns the connection and the relay address of the reply.
func socksAssociate(t *testing.T, addr string) (net.Conn, netip.AddrPort) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{5, 1, 0})
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b != [2]byte{5, 0} {
		t.Fatalf("method: % x %v", b, err)
	}
	c.Write(socksRequest(3, 1, []byte{0, 0, 0, 0}, 0))
	var rep [10]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		t.Fatal(err)
	}
	if rep[0] != 5 || rep[1] != 0 || rep[3] != 1 {
		t.Fatalf("UDP ASSOCIATE reply % x, want success with an IPv4 address", rep)
	}
	c.SetDeadline(time.Time{})
	return c, netip.AddrPortFrom(netip.AddrFrom4([4]byte(rep[4:8])), binary.BigEndian.Uint16(rep[8:]))
}

// socksUDP is a SOCKS5 UDP datagram for a name.
func socksUDP(name string, payload []byte) []byte {
	b := []byte{0, 0, 0, 3, byte(len(name))}
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, 53)
	return append(b, payload...)
}

// TestSOCKS5UDPAssociate: datagrams through a UDP association reach the
// service each names, and replies carry the client's header; foreign
// sources, fragments and non-.p2p destinations are dropped and counted;
// closing the TCP connection ends the association and its flows.
func TestSOCKS5UDPAssociate(t *testing.T) {
	o := &flowOverlay{testOverlay: newTestOverlay()}
	s := proxy.NewServer(o, classify, nil)
	t.Cleanup(func() { s.Close(context.Background()) })
	if err := s.Apply(proxy.Config{SOCKS5: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	ctl, relay := socksAssociate(t, s.Addr(proxy.KindSOCKS5).String())
	c := newUDPClient(t)
	for i := range 1000 {
		name := "uecho.db.p2p"
		if i%3 == 0 {
			name = "other.DB.p2p"
		}
		payload := []byte(fmt.Sprintf("datagram %d %s", i, bytes.Repeat([]byte("y"), i%700)))
		got := udpRoundTrip(t, c, relay, socksUDP(name, payload))
		want := socksUDP(name, append([]byte(name[:len(name)-len(".db.p2p")]+":"), payload...))
		if !bytes.Equal(got, want) {
			t.Fatalf("datagram %d: got %q, want %q", i, got[:min(len(got), 40)], want[:min(len(want), 40)])
		}
	}
	big := bytes.Repeat([]byte("z"), 3000)
	if got := udpRoundTrip(t, c, relay, socksUDP("uecho.db.p2p", big)); !bytes.Equal(got, socksUDP("uecho.db.p2p", append([]byte("uecho:"), big...))) {
		t.Fatalf("3,000-byte datagram: %d bytes back", len(got))
	}
	// The largest datagram a client can send draws a reply that is 6 bytes
	// too long for UDP with its header: it is counted, not lost unseen.
	huge := bytes.Repeat([]byte("h"), 65507-len(socksUDP("uecho.db.p2p", nil)))
	if _, err := c.WriteToUDPAddrPort(socksUDP("uecho.db.p2p", huge), relay); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reply too large to send to be counted", func() bool {
		for _, f := range s.Flows() {
			if f.Dropped[proxy.DropReplyFailed] == 1 {
				return true
			}
		}
		return false
	})
	if n := o.flows.Load(); n != 2 {
		t.Fatalf("%d flows for two destinations", n)
	}
	// Dropped: a fragment, an IP destination, an unknown peer, a bad RSV.
	frag := socksUDP("uecho.db.p2p", []byte("f"))
	frag[2] = 1
	ipDest := append([]byte{0, 0, 0, 1, 127, 0, 0, 1, 0, 53}, "x"...)
	bad := socksUDP("uecho.db.p2p", []byte("b"))
	bad[0] = 1
	for _, d := range [][]byte{frag, ipDest, socksUDP("uecho.nobody.p2p", []byte("n")), bad} {
		c.WriteToUDPAddrPort(d, relay)
	}
	// Strangers' datagrams, from another IP and from another port of the
	// client's IP (the request named no port, so the client's first
	// datagram fixed it), are not answered.
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 1)} {
		stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		defer stranger.Close()
		stranger.WriteToUDPAddrPort(socksUDP("uecho.db.p2p", []byte("s")), relay)
		stranger.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := stranger.ReadFromUDPAddrPort(make([]byte, 100)); err == nil {
			t.Fatalf("a stranger's datagram from %v was answered", stranger.LocalAddr())
		}
	}
	if n := o.flows.Load(); n != 2 {
		t.Fatalf("%d flows after the dropped datagrams; want still 2", n)
	}
	if got := len(s.Flows()); got != 2 {
		t.Fatalf("%d flows listed", got)
	}
	// The end of the TCP connection ends the association.
	ctl.Close()
	waitUntil(t, "the association to end", func() bool { return len(s.Flows()) == 0 })
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	c.WriteToUDPAddrPort(socksUDP("uecho.db.p2p", []byte("late")), relay)
	if _, _, err := c.ReadFromUDPAddrPort(make([]byte, 100)); err == nil || !errors.Is(err, errTimeoutOrRefused(err)) {
		t.Fatalf("a datagram after the association ended: %v", err)
	}
}

// errTimeoutOrRefused returns err when it is a timeout or a refusal (the
// relay socket is gone), for errors.Is.
func errTimeoutOrRefused(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	if err != nil && bytes.Contains([]byte(err.Error()), []byte("refused")) {
		return err
	}
	return errors.New("neither")
}

// TestUDPRefusedLoggedSparingly: every datagram to a refused udp service
// dials again (the failed flow is forgotten) and is counted, but the
// refusal is logged once per 10 s, not once per datagram.
func TestUDPRefusedLoggedSparingly(t *testing.T) {
	o := &flowOverlay{testOverlay: newTestOverlay()}
	f, logs := newLoggedForwarder(t, o)
	if err := f.Apply([]proxy.Forward{{Listen: "127.0.0.1:0", Peer: "db", Service: "secret", Protocol: proxy.ProtocolUDP}}); err != nil {
		t.Fatal(err)
	}
	to := f.Addr("127.0.0.1:0").(*net.UDPAddr).AddrPort()
	c := newUDPClient(t)
	const knocks = 20
	for i := range knocks {
		c.WriteToUDPAddrPort([]byte("knock"), to)
		waitUntil(t, "the refused dial", func() bool { return o.flows.Load() == int64(i+1) && len(f.Flows()) == 0 })
	}
	if n := strings.Count(logs.String(), "udp: flow refused"); n != 1 {
		t.Fatalf("%d refused datagrams logged %d lines; want 1:\n%s", knocks, n, logs)
	}
}
