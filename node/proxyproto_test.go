package node_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/transport"
)

// seenConn is what a PROXY v2 backend saw on one connection: the header's
// family, addresses and TLVs, and where the connection came from.
type seenConn struct {
	fam      byte
	src, dst netip.AddrPort
	tlvs     map[byte]string
	remote   net.Addr // the connection's own peer address
	err      error
}

// ppBackend accepts connections, reads a PROXY v2 header from each, reports
// it and then echoes the payload until EOF.
type ppBackend struct {
	ln   net.Listener
	seen chan seenConn
	wg   sync.WaitGroup
}

func newPPBackend(t *testing.T, network, addr string) *ppBackend {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &ppBackend{ln: ln, seen: make(chan seenConn, 16)}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(failBound))
				s := readPPv2(c)
				s.remote = c.RemoteAddr()
				b.seen <- s
				if s.err != nil {
					return
				}
				io.Copy(c, c)
				if cw, ok := c.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *ppBackend) next(t *testing.T) seenConn {
	t.Helper()
	select {
	case s := <-b.seen:
		return s
	case <-time.After(failBound):
		t.Fatal("the backend got no connection")
		return seenConn{}
	}
}

// readPPv2 reads one PROXY v2 header as a receiver written from the
// specification does, independently of package proxy's encoder.
func readPPv2(r io.Reader) seenConn {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return seenConn{err: err}
	}
	if !bytes.Equal(fixed[:12], []byte("\r\n\r\n\x00\r\nQUIT\n")) || fixed[12] != 0x21 {
		return seenConn{err: fmt.Errorf("not a PROXY v2 PROXY header: %x", fixed)}
	}
	rest := make([]byte, int(fixed[14])<<8|int(fixed[15]))
	if _, err := io.ReadFull(r, rest); err != nil {
		return seenConn{err: err}
	}
	s := seenConn{fam: fixed[13], tlvs: map[byte]string{}}
	port := func(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
	switch {
	case s.fam == 0x11 && len(rest) >= 12:
		s.src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[:4])), port(rest[8:]))
		s.dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[4:8])), port(rest[10:]))
		rest = rest[12:]
	case s.fam == 0x21 && len(rest) >= 36:
		s.src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(rest[:16])), port(rest[32:]))
		s.dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(rest[16:32])), port(rest[34:]))
		rest = rest[36:]
	case s.fam == 0x00:
	default:
		return seenConn{err: fmt.Errorf("family %#x with %d bytes", s.fam, len(rest))}
	}
	for len(rest) >= 3 {
		l := int(rest[1])<<8 | int(rest[2])
		if len(rest) < 3+l {
			return seenConn{err: errors.New("truncated TLV")}
		}
		s.tlvs[rest[0]] = string(rest[3 : 3+l])
		rest = rest[3+l:]
	}
	if len(rest) != 0 {
		return seenConn{err: errors.New("trailing bytes in the header")}
	}
	return s
}

// sessionRemote is the address n's session with peer over carrier comes
// from, as n sees it.
func sessionRemote(t *testing.T, n *testNode, peer, carrier string) netip.AddrPort {
	t.Helper()
	for _, s := range n.Sessions() {
		if s.Peer == peer && s.Carrier == carrier {
			ap, err := netip.ParseAddrPort(s.Remote)
			if err != nil {
				t.Fatalf("session remote %q: %v", s.Remote, err)
			}
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	t.Fatalf("no %s session with %s: %+v", carrier, peer, n.Sessions())
	return netip.AddrPort{}
}

func checkSeen(t *testing.T, s seenConn, a *testNode, src, dst netip.AddrPort) {
	t.Helper()
	if s.err != nil {
		t.Fatalf("backend: %v", s.err)
	}
	if s.fam != 0x11 || s.src != src || s.dst != dst {
		t.Errorf("header: family %#x, %v -> %v; want 0x11 (TCP over IPv4), %v -> %v", s.fam, s.src, s.dst, src, dst)
	}
	if got := s.tlvs[0xE0]; got != a.ID().String() {
		t.Errorf("peer ID TLV 0xE0 = %q, want %q", got, a.ID())
	}
	if got := s.tlvs[0xE1]; got != "A" {
		t.Errorf("peer name TLV 0xE1 = %q, want %q (the name in the server's [[peers]])", got, "A")
	}
}

// TestProxyProtocolV2 checks what a backend behind proxy_protocol = "v2"
// sees over QUIC and over the TCP carrier, for a TCP and a unix: target, and
// that a service without it gets the payload only.
func TestProxyProtocolV2(t *testing.T) {
	tcpBack := newPPBackend(t, "tcp", "127.0.0.1:0")
	dir, err := os.MkdirTemp("", "p2pd-pp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	unixBack := newPPBackend(t, "unix", filepath.Join(dir, "b.sock"))
	plain := newEchoBackend(t)
	kA := newKey(t)
	tcpPort := freeTCPPort(t)
	srv := startNode(t, node.Config{Name: "S", Peers: []node.Peer{{Name: "A", ID: kA.PeerID()}},
		Services: []node.Service{
			{Name: "pp", Target: tcpBack.ln.Addr().String(), Allow: []string{"A"}, ProxyProtocol: node.ProxyProtocolV2},
			{Name: "ppunix", Target: "unix:" + unixBack.ln.Addr().String(), Allow: []string{"A"}, ProxyProtocol: node.ProxyProtocolV2},
			{Name: "plain", Target: plain.Addr(), Allow: []string{"A"}},
		},
		Transport: transport.Config{ListenTCP: []string{"127.0.0.1:" + strconv.Itoa(tcpPort)}}})
	dst := netip.MustParseAddrPort(tcpBack.ln.Addr().String())

	for _, carrier := range []string{node.TransportQUIC, node.TransportTCP} {
		t.Run(carrier, func(t *testing.T) {
			addr := srv.addr
			if carrier == node.TransportTCP {
				addr = "127.0.0.1:" + strconv.Itoa(tcpPort)
			}
			a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{
				{Name: "S", ID: srv.ID(), Addresses: []string{addr}, Transport: carrier}}})
			defer a.stop()
			ctx := testCtx(t)
			data := randomBytes(256 << 10)
			if err := dialEcho(ctx, a, "S", "pp", data); err != nil {
				t.Fatal(err)
			}
			src := sessionRemote(t, srv, "A", carrier)
			if carrier == node.TransportQUIC && src.String() != a.addr {
				t.Errorf("S sees A's QUIC session from %v, want A's UDP socket %s", src, a.addr)
			}
			checkSeen(t, tcpBack.next(t), a, src, dst)

			// A unix: target: the destination is the unspecified address.
			if err := dialEcho(ctx, a, "S", "ppunix", data); err != nil {
				t.Fatal(err)
			}
			checkSeen(t, unixBack.next(t), a, src, netip.MustParseAddrPort("0.0.0.0:0"))
		})
	}

	// Without proxy_protocol the backend gets the payload and nothing else:
	// the echo comes back byte for byte.
	a := startNode(t, node.Config{Name: "A", Key: kA, Peers: []node.Peer{srv.peer("S", true)}})
	if err := dialEcho(testCtx(t), a, "S", "plain", []byte("no header before this")); err != nil {
		t.Fatal(err)
	}
}
