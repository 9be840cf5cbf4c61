package transport

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/quic-go/quic-go"
)

func TestSourceLimiter(t *testing.T) {
	l := newSourceLimiter(10, 5, 100)
	now := time.Unix(1000, 0)
	a := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4242}
	b := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 4242}
	for i := range 5 {
		if !l.begin(a, now) {
			t.Fatalf("handshake %d of the burst refused", i+1)
		}
	}
	if l.begin(&net.UDPAddr{IP: a.IP, Port: 9999}, now) {
		t.Fatal("a sixth handshake from the same IP (another port) in the same instant was allowed")
	}
	if !l.begin(b, now) {
		t.Fatal("another source was refused because of the first")
	}
	if !l.begin(a, now.Add(100*time.Millisecond)) {
		t.Fatal("no token after 100 ms at 10/s")
	}
	if l.begin(a, now.Add(100*time.Millisecond)) {
		t.Fatal("two tokens after 100 ms at 10/s")
	}
	mapped := &net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 1}
	if l.begin(mapped, now.Add(100*time.Millisecond)) {
		t.Fatal("the IPv4-mapped spelling of a limited address got its own bucket")
	}
	for range 100 {
		if !l.begin(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, now) {
			t.Fatal("a loopback source was limited")
		}
	}
}

// TestSourceLimiterPrefixes: an IPv6 source is its /64, and a network
// (IPv4 /24, IPv6 /48) has a pending budget of its own, so that many
// addresses of one attacker still get one network's share.
func TestSourceLimiterPrefixes(t *testing.T) {
	l := newSourceLimiter(1000, 1000, pendingPerSource)
	now := time.Unix(1000, 0)
	ip6 := func(s string) net.Addr { return &net.UDPAddr{IP: net.ParseIP(s), Port: 1} }
	for i := range pendingPerSource {
		if !l.begin(ip6(fmt.Sprintf("2001:db8:1:1::%x", i+1)), now) {
			t.Fatalf("handshake %d from one /64 refused", i+1)
		}
	}
	if l.begin(ip6("2001:db8:1:1:ffff::1"), now) {
		t.Fatal("another address of the same /64 was not counted with it")
	}
	admitted := pendingPerSource
	for i := range 2 * pendingPerNetwork {
		if l.begin(ip6(fmt.Sprintf("2001:db8:1:%x::1", i+2)), now) {
			admitted++
		}
	}
	if admitted != pendingPerNetwork {
		t.Fatalf("one /48 got %d pending handshakes, want its budget of %d", admitted, pendingPerNetwork)
	}
	if !l.begin(ip6("2001:db8:2::1"), now) {
		t.Fatal("another /48 was refused because of the first")
	}
	for i := range 2 * pendingPerNetwork {
		l.begin(&net.UDPAddr{IP: net.IPv4(198, 51, 100, byte(i+1)), Port: 1}, now)
	}
	if l.begin(&net.UDPAddr{IP: net.IPv4(198, 51, 100, 250), Port: 1}, now) {
		t.Fatal("an IPv4 /24 went past its budget")
	}
	l.end(&net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 1})
	if !l.begin(&net.UDPAddr{IP: net.IPv4(198, 51, 100, 250), Port: 1}, now) {
		t.Fatal("a /24 stayed full after one of its handshakes ended")
	}
}

func TestSourceLimiterBounded(t *testing.T) {
	l := newSourceLimiter(10, 5, 100)
	now := time.Unix(1000, 0)
	for i := range maxSources {
		l.begin(&net.UDPAddr{IP: net.ParseIP(fmt.Sprintf("2001:db8:%x::1", i+1)), Port: 1}, now)
	}
	// A second later every bucket is full again: the next new source prunes them.
	l.begin(&net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 1}, now.Add(time.Second))
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d sources kept after the prune, want 1", n)
	}
}

// localIPv4 is a non-loopback IPv4 address of this machine, or "".
func localIPv4() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return ipn.IP.String()
		}
	}
	return ""
}

// TestHandshakesLimitedPerSource dials a responder from a non-loopback
// address more often than its (test-sized) bucket allows: the handshakes
// past it are refused with the generic close and make no session.
func TestHandshakesLimitedPerSource(t *testing.T) {
	ip := localIPv4()
	if ip == "" {
		t.Skip("no non-loopback IPv4 address")
	}
	ka, kb := newKey(t), newKey(t)
	trust := trustOnly(t, ka, kb)
	listen := func(k identity.PrivateKey) *Endpoint {
		ep, err := Listen(Config{Key: k, Listen: []string{ip + ":0"}, Trust: trust, HandshakeTimeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	a, b := listen(ka), listen(kb)
	b.adm.sources.setRate(0.001, 3) // three, then nothing for the test's life
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		for {
			s, err := b.Accept(ctx)
			if err != nil {
				return
			}
			defer s.Close(CodeNormal)
		}
	}()
	for i := range 5 {
		s, err := a.Dial(ctx, kb.PeerID(), addr(b))
		switch {
		case i < 3 && err != nil:
			t.Fatalf("dial %d within the bucket: %v", i+1, err)
		case i >= 3 && !isRefused(err):
			t.Fatalf("dial %d past the bucket: %v; want the generic refusal", i+1, err)
		}
		if s != nil {
			s.Close(CodeNormal)
		}
	}
}

// TestSilentSourceCannotFillPending (RELIABILITY.md B10, one flooding
// source): a source completes QUIC handshakes and then says nothing, so
// each waits for Noise message 1 until the handshake timeout. It gets
// pendingPerSource of them; the rest are refused at once, and a peer from
// another address still connects while they are pending.
func TestSilentSourceCannotFillPending(t *testing.T) {
	ip := localIPv4()
	if ip == "" {
		t.Skip("no non-loopback IPv4 address")
	}
	ka, kb := newKey(t), newKey(t)
	b, err := Listen(Config{Key: kb, Listen: []string{"0.0.0.0:0"}, Trust: trustOnly(t, ka, kb)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	port := b.Addrs()[0].(*net.UDPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	flood := &quic.Transport{Conn: uc}
	defer flood.Close()
	const silent = pendingPerSource + 4
	var conns []*quic.Conn
	for i := range silent {
		c, err := flood.Dial(ctx, &net.UDPAddr{IP: net.ParseIP(ip), Port: port}, clientTLS(), b.quicConfig())
		if err != nil {
			t.Fatalf("silent connection %d: QUIC handshake: %v", i+1, err)
		}
		conns = append(conns, c)
	}
	// The ones past the source's share are closed with the generic refusal.
	refused := func() int {
		n := 0
		for _, c := range conns {
			if c.Context().Err() != nil {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for refused() < silent-pendingPerSource && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := refused(); n != silent-pendingPerSource {
		t.Fatalf("%d of %d silent connections closed; want the %d past the source's share", n, silent, silent-pendingPerSource)
	}
	if p := b.adm.pendingCount(); p != pendingPerSource {
		t.Fatalf("%d handshakes pending, want %d", p, pendingPerSource)
	}
	// A peer on loopback is not held up by them.
	a := newEndpoint(t, ka, trustOnly(t, ka, kb))
	go func() {
		if s, err := b.Accept(ctx); err == nil {
			defer s.Close(CodeNormal)
			<-ctx.Done()
		}
	}()
	s, err := a.Dial(ctx, kb.PeerID(), fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("a peer's dial during the flood: %v", err)
	}
	s.Close(CodeNormal)
	for _, c := range conns {
		c.CloseWithError(0, "")
	}
}

// setRate changes the bucket parameters of a running limiter.
func (l *sourceLimiter) setRate(rate, burst float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate, l.burst = rate, burst
}
