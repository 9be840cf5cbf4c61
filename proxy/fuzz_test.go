package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func FuzzSOCKS5Request(f *testing.F) {
	f.Add([]byte("\x05\x01\x00\x03\x0bfiles.db.p2p\x00\x50"))
	f.Add([]byte("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"))
	f.Add([]byte("\x05\x03\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00"))
	f.Add([]byte("\x05\x01\x00\x03\x00\x00\x50"))
	f.Add([]byte("\x05\x01\x00\x09"))
	f.Add([]byte("\x04\x01\x00\x50\x7f\x00\x00\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, n, err := parseRequest(b)
		if err != nil {
			if errors.Is(err, errShortRequest) {
				if l, lerr := requestLen(b); lerr == nil && l <= len(b) {
					t.Fatalf("short request, yet requestLen says %d of %d bytes", l, len(b))
				}
			}
			return
		}
		if n > len(b) || n > maxRequestLen {
			t.Fatalf("parsed %d bytes of %d (max %d)", n, len(b), maxRequestLen)
		}
		out, err := req.AppendBinary(nil)
		if err != nil {
			t.Fatalf("%+v does not encode: %v", req, err)
		}
		want := bytes.Clone(b[:n])
		want[2] = 0 // RSV is ignored on reading and written as 0
		if !bytes.Equal(out, want) {
			t.Fatalf("round trip: % x, want % x", out, want)
		}
		if again, n2, err := parseRequest(out); err != nil || again != req || n2 != n {
			t.Fatalf("reparsed %+v, %d, %v; want %+v, %d", again, n2, err, req, n)
		}
	})
}

// FuzzSOCKS5Handshake feeds a whole client side of the handshake, with and
// without credentials configured.
func FuzzSOCKS5Handshake(f *testing.F) {
	f.Add([]byte("\x05\x01\x00\x05\x01\x00\x03\x0bfiles.db.p2p\x00\x50"), false)
	f.Add([]byte("\x05\x01\x02\x01\x05alice\x06s3cret\x05\x01\x00\x03\x0bfiles.db.p2p\x00\x50"), true)
	f.Add([]byte("\x05\x02\x00\x02\x01\x00\x00\x05\x01\x00\x04"), true)
	f.Fuzz(func(t *testing.T, b []byte, auth bool) {
		cfg := &Config{}
		if auth {
			cfg.Username, cfg.Password = "alice", "s3cret"
		}
		c := &fuzzConn{r: bytes.NewReader(b)}
		req, answer, err := socksHandshake(c, cfg)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v carries no kind", err)
			}
			if len(answer) != 0 && len(answer) != 2 && len(answer) != replyLen {
				t.Fatalf("answer % x has no SOCKS5 shape", answer)
			}
			return
		}
		if req.atyp == atypDomain && (len(req.host) == 0 || len(req.host) > maxNameLen) {
			t.Fatalf("name of %d bytes accepted", len(req.host))
		}
	})
}

// fuzzConn is a net.Conn that reads a fixed input and discards writes.
type fuzzConn struct {
	net.Conn
	r io.Reader
}

func (c *fuzzConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error) { return len(p), nil }

func FuzzHTTPProxyHead(f *testing.F) {
	f.Add([]byte("GET http://files.db.p2p/blob HTTP/1.1\r\nHost: files.db.p2p\r\n\r\n"))
	f.Add([]byte("CONNECT files.DB.lan.p2p:443 HTTP/1.1\r\nHost: files.db.lan.p2p:443\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: files.db.p2p\r\n\r\n"))
	f.Add([]byte("GET https://[::1]:443/ HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("CONNECT db.p2p. HTTP/1.1\r\nHost: x\r\n\r\n"))
	cfg := &Config{Username: "alice", Password: "s3cret"}
	f.Fuzz(func(t *testing.T, head []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			return
		}
		proxyAuthOK(r.Header, cfg)
		host, err := requestHost(r)
		if err != nil {
			if k := kindOf(err, nil); k != KindBadRequest {
				t.Fatalf("requestHost: kind %v, want bad_request", k)
			}
			return
		}
		tg, err := resolveTarget(fuzzOverlay{}, host)
		if err != nil {
			switch k := kindOf(err, func(error) ErrorKind { return KindUnknownPeer }); k {
			case KindNotP2P, KindBadRequest, KindUnknownPeer:
			default:
				t.Fatalf("resolveTarget(%q): kind %v", host, k)
			}
			return
		}
		if name := tg.service + "." + tg.peer + p2pSuffix; !strings.EqualFold(name, strings.TrimSuffix(host, ".")) {
			t.Fatalf("resolveTarget(%q) = %q", host, name)
		}
		if !validService(tg.service) {
			t.Fatalf("resolveTarget(%q): service %q accepted", host, tg.service)
		}
	})
}

// fuzzOverlay knows peers "db" and "db.lan" in any case; it dials nothing.
type fuzzOverlay struct{}

func (fuzzOverlay) ResolvePeer(label string) (string, error) {
	if l := strings.ToLower(label); l == "db" || l == "db.lan" {
		return l, nil
	}
	return "", errors.New("unknown peer")
}

func (fuzzOverlay) DialService(context.Context, string, string) (Conn, error) {
	return nil, errors.New("no dials")
}

func (fuzzOverlay) DialServiceAnswered(context.Context, string, string) (Conn, error) {
	return nil, errors.New("no dials")
}

func FuzzSOCKS5UDPHeader(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x03\x0cuecho.db.p2p\x00\x35payload"))
	f.Add([]byte("\x00\x00\x01\x03\x0cuecho.db.p2p\x00\x35"))
	f.Add([]byte("\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35x"))
	f.Add([]byte("\x00\x00\x00\x04\x00"))
	f.Add([]byte("\x01\x00\x00\x03\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, n, err := parseUDPHeader(b)
		if err != nil {
			return
		}
		if n > len(b) || n < udpHeaderFixedLen+1 {
			t.Fatalf("header of %d bytes in a %d-byte datagram", n, len(b))
		}
		// The header re-encodes to the bytes it was read from.
		enc, err := req.AppendBinary(nil)
		if err != nil {
			t.Fatalf("%+v does not re-encode: %v", req, err)
		}
		if !bytes.Equal(enc[3:], b[3:n]) || b[0] != 0 || b[1] != 0 || b[2] != 0 {
			t.Fatalf("header %x re-encodes as %x", b[:n], enc)
		}
	})
}

// countingOverlay is fuzzOverlay that counts its lookups.
type countingOverlay struct {
	fuzzOverlay
	n *int
}

func (o countingOverlay) ResolvePeer(label string) (string, error) {
	*o.n++
	return o.fuzzOverlay.ResolvePeer(label)
}

// TestResolveTargetLongName: a destination longer than a DNS name is
// refused before any lookup (every suffix of a name is tried as a peer, so
// a 64 KiB CONNECT host would cost work quadratic in its length); one of
// 253 bytes still resolves.
func TestResolveTargetLongName(t *testing.T) {
	var lookups int
	ov := countingOverlay{n: &lookups}
	long := strings.Repeat("a.", 150) + "db.p2p"
	if _, err := resolveTarget(ov, long); kindOf(err, nil) != KindBadRequest || lookups != 0 {
		t.Fatalf("a %d-byte name: %v after %d lookups; want bad_request before any", len(long), err, lookups)
	}
	fits := strings.Repeat("a", 253-len(".db.p2p")) + ".db.p2p"
	tg, err := resolveTarget(ov, fits)
	if err == nil && validService(tg.service) {
		t.Fatalf("a service label of %d bytes was accepted", len(tg.service))
	}
	if kindOf(err, nil) != KindBadRequest || lookups != 1 {
		t.Fatalf("a 253-byte name: %v after %d lookups; want its peer found and its too long service refused", err, lookups)
	}
}
