package testnet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// ProxyV2 is a PROXY protocol v2 header as a receiver reads it.
// ParseProxyV2 and ReadProxyV2 are written from haproxy's proxy-protocol.txt,
// apart from package proxy's encoder, so that a mistake in one shows as a
// disagreement with the other.
type ProxyV2 struct {
	VerCmd   byte // 0x21: version 2, command PROXY
	Family   byte // 0x11 TCP over IPv4, 0x21 TCP over IPv6, 0x00 AF_UNSPEC
	Src, Dst netip.AddrPort
	TLVs     map[byte]string
}

// proxyV2Sig is the 12-byte signature that starts every v2 header.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// ParseProxyV2 parses the header at the start of b and returns it with its
// length in bytes; what follows the header is left alone.
func ParseProxyV2(b []byte) (ProxyV2, int, error) {
	if len(b) < 16 {
		return ProxyV2{}, 0, fmt.Errorf("%d bytes, shorter than the 16-byte fixed part", len(b))
	}
	if !bytes.Equal(b[:12], proxyV2Sig) {
		return ProxyV2{}, 0, fmt.Errorf("signature %x", b[:12])
	}
	h := ProxyV2{VerCmd: b[12], Family: b[13], TLVs: map[byte]string{}}
	l := int(b[14])<<8 | int(b[15])
	if len(b) < 16+l {
		return ProxyV2{}, 0, fmt.Errorf("length %d, only %d bytes follow", l, len(b)-16)
	}
	n := 16 + l
	rest := b[16:n]
	port := func(p []byte) uint16 { return uint16(p[0])<<8 | uint16(p[1]) }
	switch h.Family {
	case 0x11:
		if len(rest) < 12 {
			return ProxyV2{}, 0, errors.New("short IPv4 block")
		}
		h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[0:4])), port(rest[8:10]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[4:8])), port(rest[10:12]))
		rest = rest[12:]
	case 0x21:
		if len(rest) < 36 {
			return ProxyV2{}, 0, errors.New("short IPv6 block")
		}
		h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(rest[0:16])), port(rest[32:34]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(rest[16:32])), port(rest[34:36]))
		rest = rest[36:]
	case 0x00:
	default:
		return ProxyV2{}, 0, fmt.Errorf("family %#x", h.Family)
	}
	for len(rest) > 0 {
		if len(rest) < 3 {
			return ProxyV2{}, 0, errors.New("truncated TLV header")
		}
		tl := int(rest[1])<<8 | int(rest[2])
		if len(rest) < 3+tl {
			return ProxyV2{}, 0, errors.New("truncated TLV value")
		}
		h.TLVs[rest[0]] = string(rest[3 : 3+tl])
		rest = rest[3+tl:]
	}
	return h, n, nil
}

// ReadProxyV2 reads one header with the PROXY command from r, and not a
// byte past it.
func ReadProxyV2(r io.Reader) (ProxyV2, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return ProxyV2{}, err
	}
	if !bytes.Equal(fixed[:12], proxyV2Sig) || fixed[12] != 0x21 {
		return ProxyV2{}, fmt.Errorf("no PROXY v2 header: %q", fixed[:])
	}
	b := make([]byte, 16+(int(fixed[14])<<8|int(fixed[15])))
	copy(b, fixed[:])
	if _, err := io.ReadFull(r, b[16:]); err != nil {
		return ProxyV2{}, err
	}
	h, _, err := ParseProxyV2(b)
	return h, err
}

// ProxySeen is what a ProxyBackend saw on one connection.
type ProxySeen struct {
	Remote net.Addr // the connection's own peer address
	Header ProxyV2  // when the backend reads one
	Err    error    // from reading the header
}

// ProxyBackend stands for a service behind proxy_protocol = "v2": it
// accepts connections, reads a PROXY v2 header from each (or, made with
// header false, none, as a service without it), reports what it saw and
// echoes the rest until EOF. The test's cleanup closes the listener and
// waits for the connections.
type ProxyBackend struct {
	ln   net.Listener
	seen chan ProxySeen
	wg   sync.WaitGroup // the accept loop and the connections
}

// NewProxyBackend starts a ProxyBackend listening on network and addr; each
// connection may last bound at the most.
func NewProxyBackend(tb testing.TB, network, addr string, header bool, bound time.Duration) *ProxyBackend {
	tb.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	b := &ProxyBackend{ln: ln, seen: make(chan ProxySeen, 16)}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(bound))
				s := ProxySeen{Remote: c.RemoteAddr(), Header: ProxyV2{TLVs: map[byte]string{}}}
				if header {
					s.Header, s.Err = ReadProxyV2(c)
				}
				b.seen <- s
				if s.Err != nil {
					return
				}
				io.Copy(c, c)
				if cw, ok := c.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
			})
		}
	})
	tb.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

// Addr is where the backend listens: "host:port", or a socket path.
func (b *ProxyBackend) Addr() string { return b.ln.Addr().String() }

// Next is what the backend saw on its next connection; the test fails if
// none comes within wait.
func (b *ProxyBackend) Next(tb testing.TB, wait time.Duration) ProxySeen {
	tb.Helper()
	select {
	case s := <-b.seen:
		return s
	case <-time.After(wait):
		tb.Fatalf("the backend got no connection in %v", wait)
		return ProxySeen{}
	}
}
