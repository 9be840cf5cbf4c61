package attack

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/transport"
	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMakeInitials(t *testing.T) {
	pkts, err := MakeInitials(t.Context(), 64)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, p := range pkts {
		dcid, ok := InitialDCID(p)
		if !ok || len(p) != InitialSize || len(dcid) < minInitialDCID {
			t.Fatalf("packet %d: %d bytes, Initial %v, DCID %x", i, len(p), ok, dcid)
		}
		if seen[string(dcid)] {
			t.Fatalf("packet %d repeats DCID %x", i, dcid)
		}
		seen[string(dcid)] = true
	}
}

func TestGarbageInitial(t *testing.T) {
	b := make([]byte, InitialSize)
	for range 100 {
		garbageInitial(b)
		dcid, ok := InitialDCID(b)
		if !ok || len(dcid) < minInitialDCID || len(dcid) > maxConnIDLen {
			t.Fatalf("not an Initial's header: % x", b[:32])
		}
		i := 6 + len(dcid)
		if b[i] != 0 || b[i+1] != 0 || int(b[i+2]&0x3f)<<8|int(b[i+3]) != len(b)-i-4 {
			t.Fatalf("SCID, token or length wrong: % x", b[:i+4])
		}
	}
}

func TestIPv4UDPChecksums(t *testing.T) {
	src := netip.MustParseAddrPort("10.99.3.4:5555")
	dst := netip.MustParseAddrPort("10.71.0.2:4242")
	for _, size := range []int{0, 1, 17, InitialSize} {
		payload := make([]byte, size)
		rand.Read(payload)
		pkt, err := appendIPv4UDP(nil, src, dst, 7, payload)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkt) != headersLen+size {
			t.Fatalf("size %d: packet of %d bytes", size, len(pkt))
		}
		if checksum(0, pkt[:ipv4HeaderLen]) != 0 {
			t.Fatalf("size %d: IPv4 header checksum does not verify", size)
		}
		var pseudo [12]byte
		copy(pseudo[:4], pkt[12:16])
		copy(pseudo[4:8], pkt[16:20])
		pseudo[9] = protoUDP
		pseudo[10], pseudo[11] = pkt[ipv4HeaderLen+4], pkt[ipv4HeaderLen+5]
		if checksum(sumWords(0, pseudo[:]), pkt[ipv4HeaderLen:]) != 0 {
			t.Fatalf("size %d: UDP checksum does not verify", size)
		}
	}
	if _, err := appendIPv4UDP(nil, src, dst, 0, make([]byte, maxUDPPayload+1)); err != errPayloadSize {
		t.Fatalf("oversized payload: %v", err)
	}
}

// quicServer listens on loopback with ALPN p2pd/1 and handles each
// accepted connection with handle until the test ends.
func quicServer(t *testing.T, conf *quic.Config, handle func(*quic.Conn)) netip.AddrPort {
	t.Helper()
	key, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := transport.Listen(transport.Config{Key: key, Listen: []string{"127.0.0.1:0"},
		Trust: func([32]byte) (identity.PeerID, bool) { return identity.PeerID{}, false }})
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := ep.ServerTLS() // p2pd's own throwaway certificate and ALPN
	ep.Close()
	// An own Transport, not quic.ListenAddr: closing a ListenAddr listener
	// leaves its socket reading until every accepted connection has timed
	// out, past the end of the test; Transport.Close ends them all and waits.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(tlsConf, conf)
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done; tr.Close(); udp.Close() })
	return ln.Addr().(*net.UDPAddr).AddrPort()
}

func TestStreamsReachesTheLimit(t *testing.T) {
	addr := quicServer(t, &quic.Config{MaxIncomingStreams: 100}, func(*quic.Conn) {})
	res, err := Streams(t.Context(), StreamsConfig{Target: addr, Sources: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Conns: 2, Gap: time.Millisecond, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != 2 || res.HitLimit != 2 || len(res.Streams) != 2 || res.Streams[0] != 100 {
		t.Fatalf("result %+v; want 2 connections of 100 streams each, both at the limit", res)
	}
}

func TestSilentRedialsWhatTheServerCloses(t *testing.T) {
	addr := quicServer(t, &quic.Config{}, func(c *quic.Conn) {
		time.AfterFunc(100*time.Millisecond, func() { c.CloseWithError(1, "") })
	})
	res, err := Silent(t.Context(), SilentConfig{Target: addr, Sources: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		PerSource: 2, Redial: 10 * time.Millisecond, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.ServerCloses < 4 || res.CloseCodes["app:0x1"] != res.ServerCloses || res.MaxOpen > 2 {
		t.Fatalf("result %+v; want several closes with code 1 and at most 2 open", res)
	}
}

func TestDials(t *testing.T) {
	victimKey, _ := identity.GenerateKey(rand.Reader)
	peerKey, _ := identity.GenerateKey(rand.Reader)
	peerStatic, _ := peerKey.Public().NoisePublic()
	victim, err := transport.Listen(transport.Config{Key: victimKey, Listen: []string{"127.0.0.1:0"},
		Trust: func(k [32]byte) (identity.PeerID, bool) { return peerKey.PeerID(), k == peerStatic }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := victim.Accept(ctx); err != nil {
				return // the sessions end with the endpoint
			}
		}
	}()
	defer func() { cancel(); <-done; victim.Close() }()
	res, err := Dials(t.Context(), DialsConfig{Key: peerKey, Peer: victimKey.PeerID(), Target: victim.Addrs()[0].String(),
		Local: "127.0.0.1", Count: 3, Interval: 10 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 3 || res.P90 <= 0 || res.P90 >= 5*time.Second {
		t.Fatalf("result %+v; want 3 sessions", res)
	}
}
