package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// webBackend is a real HTTP/1.1 server on loopback that counts its TCP
// connections and records the last request's headers.
type webBackend struct {
	addr  string
	conns atomic.Int64

	mu     sync.Mutex // guards header
	header http.Header
}

func newWebBackend(t *testing.T, body []byte) *webBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &webBackend{addr: ln.Addr().String()}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.mu.Lock()
			b.header = r.Header.Clone()
			b.mu.Unlock()
			io.Copy(io.Discard, r.Body)
			switch r.URL.Path {
			case "/hop":
				w.Header().Set("Connection", "X-Resp-Hop")
				w.Header().Set("X-Resp-Hop", "1")
				w.Header().Set("Keep-Alive", "timeout=5")
				w.Header().Set("Trailer", "X-Sum")
				w.Write(body)
				w.Header().Set("X-Sum", fmt.Sprintf("%x", sha256.Sum256(body)))
			default:
				w.Header().Set("X-Path", r.URL.RequestURI())
				w.Write(body)
			}
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				b.conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *webBackend) lastHeader() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.header
}

// proxyClient is one client connection to an HTTP proxy.
type proxyClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialProxy(t *testing.T, addr string) *proxyClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(failBound))
	return &proxyClient{c: c, br: bufio.NewReader(c)}
}

// do sends a request head (lines joined by CRLF) and reads the response.
func (p *proxyClient) do(t *testing.T, method string, lines ...string) (*http.Response, []byte) {
	t.Helper()
	if _, err := io.WriteString(p.c, strings.Join(lines, "\r\n")+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(p.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s: %v", lines[0], err)
	}
	if method == http.MethodConnect && resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: body: %v", lines[0], err)
	}
	return resp, body
}

func TestHTTPProxyKeepAlive(t *testing.T) {
	body := randomBytes(1 << 20)
	web, web2 := newWebBackend(t, body), newWebBackend(t, []byte("two"))
	o := newTestOverlay()
	o.targets["web"], o.targets["web2"] = web.addr, web2.addr
	s := newServer(t, o, proxy.Config{HTTP: "127.0.0.1:0"})
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())

	for i, host := range []string{"web.db.p2p", "web.DB.P2P:8080", "web.db.p2p", "web2.db.p2p", "web.db.p2p"} {
		resp, got := p.do(t, "GET", "GET http://"+host+"/x?q=a;b HTTP/1.1", "Host: "+host)
		want := body
		if strings.HasPrefix(host, "web2") {
			want = []byte("two")
		}
		if resp.StatusCode != 200 || !bytes.Equal(got, want) {
			t.Fatalf("request %d to %s: %s, %d bytes; want 200 and the body, byte-exact", i, host, resp.Status, len(got))
		}
		if resp.Header.Get("X-Path") != "/x?q=a;b" || resp.Header.Get("Via") != "1.1 p2pd" {
			t.Fatalf("request %d: the target saw %q (want the origin form as sent), Via %q", i, resp.Header.Get("X-Path"), resp.Header.Get("Via"))
		}
	}
	want := []string{"early:db/web", "early:db/web2", "early:db/web"}
	if got := o.dialed(); !slices.Equal(got, want) {
		t.Fatalf("dials %q, want %q: a stream is kept while the service stays the same", got, want)
	}
	if web.conns.Load() != 2 || web2.conns.Load() != 1 {
		t.Fatalf("backend connections %d and %d, want 2 and 1", web.conns.Load(), web2.conns.Load())
	}
}

func TestHTTPProxyHopByHop(t *testing.T) {
	body := randomBytes(100 << 10)
	web := newWebBackend(t, body)
	o := newTestOverlay()
	o.targets["web"] = web.addr
	s := newServer(t, o, proxy.Config{HTTP: "127.0.0.1:0"})
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())

	resp, got := p.do(t, "GET", "GET http://web.db.p2p/hop HTTP/1.1", "Host: web.db.p2p",
		"Connection: keep-alive, X-Hop", "X-Hop: 1", "Proxy-Connection: keep-alive", "Keep-Alive: 300",
		"Proxy-Authorization: Basic dTpw", "TE: trailers, deflate", "X-End-To-End: yes", "X-Forwarded-For: 192.0.2.1")
	h := web.lastHeader()
	for _, name := range []string{"Connection", "X-Hop", "Proxy-Connection", "Keep-Alive", "Proxy-Authorization"} {
		if v, ok := h[name]; ok {
			t.Errorf("the target got hop-by-hop header %s: %q", name, v)
		}
	}
	if h.Get("Te") != "trailers" || h.Get("X-End-To-End") != "yes" || h.Get("Via") != "1.1 p2pd" || h.Get("X-Forwarded-For") != "192.0.2.1" {
		t.Errorf("the target got TE %q, X-End-To-End %q, Via %q, X-Forwarded-For %q; want trailers, yes, 1.1 p2pd, 192.0.2.1",
			h.Get("Te"), h.Get("X-End-To-End"), h.Get("Via"), h.Get("X-Forwarded-For"))
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("body of %d bytes, want %d byte-exact", len(got), len(body))
	}
	for _, name := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("the client got hop-by-hop header %s: %q", name, v)
		}
	}
	if sum := fmt.Sprintf("%x", sha256.Sum256(body)); resp.Trailer.Get("X-Sum") != sum {
		t.Errorf("trailer X-Sum %q, want %q", resp.Trailer.Get("X-Sum"), sum)
	}
	// The client connection is still good for another request.
	if resp, _ := p.do(t, "GET", "GET http://web.db.p2p/ HTTP/1.1", "Host: web.db.p2p"); resp.StatusCode != 200 {
		t.Fatalf("second request: %s", resp.Status)
	}
}

func TestHTTPProxyPost(t *testing.T) {
	o := newTestOverlay()
	o.targets["echo"] = newEchoServer(t).Addr() // answers nothing HTTP: used raw below
	web := newWebBackend(t, []byte("ok"))
	o.targets["web"] = web.addr
	s := newServer(t, o, proxy.Config{HTTP: "127.0.0.1:0"})
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
	upload := randomBytes(1 << 20)
	io.WriteString(p.c, fmt.Sprintf("POST http://web.db.p2p/up HTTP/1.1\r\nHost: web.db.p2p\r\nContent-Length: %d\r\n\r\n", len(upload)))
	p.c.Write(upload)
	resp, err := http.ReadResponse(p.br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("POST: %s %q", resp.Status, b)
	}
	if resp, _ := p.do(t, "GET", "GET http://web.db.p2p/ HTTP/1.1", "Host: web.db.p2p"); resp.StatusCode != 200 || web.conns.Load() != 1 {
		t.Fatalf("GET after POST: %s, backend connections %d; want 200 on the same stream", resp.Status, web.conns.Load())
	}
}

func TestHTTPProxyConnect(t *testing.T) {
	o := newTestOverlay()
	o.targets["echo"] = newEchoServer(t).Addr()
	s := newServer(t, o, proxy.Config{HTTP: "127.0.0.1:0"})
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
	sent := randomBytes(1 << 20)
	// The first bytes go out with the head, before the answer, as some
	// clients send a TLS ClientHello.
	io.WriteString(p.c, "CONNECT echo.db.p2p:443 HTTP/1.1\r\nHost: echo.db.p2p:443\r\n\r\n")
	p.c.Write(sent[:1000])
	resp, err := http.ReadResponse(p.br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	go func() { p.c.Write(sent[1000:]); p.c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(p.br)
	if err != nil || !bytes.Equal(got, sent) {
		t.Fatalf("echoed %d bytes (%v), want %d byte-exact", len(got), err, len(sent))
	}
	if d := o.dialed(); !slices.Equal(d, []string{"db/echo"}) {
		t.Fatalf("dials %q, want one answered dial", d)
	}
	waitUntil(t, "the CONNECT slot to free", func() bool { return s.Stats()[0].Active == 0 })
}

func TestHTTPProxyErrors(t *testing.T) {
	o := newTestOverlay()
	o.hang = "slow"
	s := newServer(t, o, proxy.Config{HTTP: "127.0.0.1:0", DialTimeout: 100 * time.Millisecond})
	addr := s.Addr(proxy.KindHTTP).String()
	for _, tt := range []struct {
		host string
		code int
		kind string
	}{
		{"files.nobody.p2p", 404, "unknown_peer"},
		{"nosuch.db.p2p", 404, "unknown_service"},
		{"secret.db.p2p", 403, "access_denied"},
		{"closed.db.p2p", 502, "target_refused"},
		{"far.db.p2p", 502, "peer_unreachable"},
		{"slow.db.p2p", 504, "timeout"},
		{"example.com", 403, "not_p2p"},
		{"127.0.0.1", 403, "not_p2p"},
		{"db.p2p", 400, "bad_request"},
	} {
		for _, method := range []string{"GET", "CONNECT"} {
			line := "GET http://" + tt.host + "/ HTTP/1.1"
			if method == "CONNECT" {
				line = "CONNECT " + tt.host + ":443 HTTP/1.1"
			}
			before := s.Stats()[0].Errors[tt.kind]
			resp, body := dialProxy(t, addr).do(t, method, line, "Host: "+tt.host)
			if resp.StatusCode != tt.code {
				t.Errorf("%s: %s, want %d", line, resp.Status, tt.code)
			}
			if !strings.HasPrefix(string(body), "p2pd: ") || strings.Count(string(body), "\n") != 1 || !strings.HasSuffix(string(body), "\n") {
				t.Errorf("%s: body %q, want one line naming the error", line, body)
			}
			if after := s.Stats()[0].Errors[tt.kind]; after != before+1 {
				t.Errorf("%s: errors[%s] went %d -> %d, want one more", line, tt.kind, before, after)
			}
		}
	}
	for _, req := range [][]string{
		{"GET / HTTP/1.1", "Host: web.db.p2p"},                   // origin form: not a proxy request
		{"GET https://web.db.p2p/ HTTP/1.1", "Host: web.db.p2p"}, // https goes through CONNECT
	} {
		if resp, body := dialProxy(t, addr).do(t, "GET", req...); resp.StatusCode != 400 {
			t.Errorf("%s: %s %q, want 400", req[0], resp.Status, body)
		}
	}
}

func TestHTTPProxyAuth(t *testing.T) {
	o := newTestOverlay()
	o.targets["web"] = newWebBackend(t, []byte("ok")).addr
	o.targets["echo"] = newEchoServer(t).Addr()
	s := newServer(t, o, proxy.Config{HTTP: "127.0.0.1:0", Username: "alice", Password: "s3cret"})
	addr := s.Addr(proxy.KindHTTP).String()
	good := "Proxy-Authorization: Basic YWxpY2U6czNjcmV0" // alice:s3cret
	bad := "Proxy-Authorization: Basic YWxpY2U6d3Jvbmc="  // alice:wrong
	for _, tt := range []struct {
		method, line, auth string
		code               int
	}{
		{"GET", "GET http://web.db.p2p/ HTTP/1.1", "", 407},
		{"GET", "GET http://web.db.p2p/ HTTP/1.1", bad, 407},
		{"GET", "GET http://web.db.p2p/ HTTP/1.1", good, 200},
		{"CONNECT", "CONNECT echo.db.p2p:1 HTTP/1.1", "", 407},
		{"CONNECT", "CONNECT echo.db.p2p:1 HTTP/1.1", good, 200},
	} {
		lines := []string{tt.line, "Host: x"}
		if tt.auth != "" {
			lines = append(lines, tt.auth)
		}
		resp, _ := dialProxy(t, addr).do(t, tt.method, lines...)
		if resp.StatusCode != tt.code {
			t.Errorf("%s with %q: %s, want %d", tt.line, tt.auth, resp.Status, tt.code)
		}
		if tt.code == 407 && resp.Header.Get("Proxy-Authenticate") != `Basic realm="p2pd"` {
			t.Errorf("%s: Proxy-Authenticate %q", tt.line, resp.Header.Get("Proxy-Authenticate"))
		}
	}
	if got := s.Stats()[0].Errors["auth"]; got != 3 {
		t.Fatalf("errors[auth] = %d, want 3", got)
	}
}

func TestHTTPProxyHeadDeadline(t *testing.T) {
	s := newServer(t, newTestOverlay(), proxy.Config{HTTP: "127.0.0.1:0", HandshakeTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", s.Addr(proxy.KindHTTP).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET http://web.db.p2p/ HTTP/1.1\r\nHost: web") // and never the rest
	c.SetDeadline(time.Now().Add(failBound))
	io.ReadAll(c)
	waitUntil(t, "the slot to free", func() bool { return s.Stats()[0].Active == 0 })
}

func TestHTTPProxyUpgrade(t *testing.T) {
	// A target that switches to a protocol of its own (echo) after its 101.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Header.Get("Upgrade") != "echo" || req.Header.Get("Connection") != "Upgrade" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		io.Copy(c, br)
	}()
	o := newTestOverlay()
	o.targets["ws"] = ln.Addr().String()
	s := newServer(t, o, proxy.Config{HTTP: "127.0.0.1:0"})
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
	io.WriteString(p.c, "GET http://ws.db.p2p/ HTTP/1.1\r\nHost: ws.db.p2p\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := http.ReadResponse(p.br, &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	sent := randomBytes(64 << 10)
	go p.c.Write(sent)
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(p.br, got); err != nil || !bytes.Equal(got, sent) {
		t.Fatalf("after the upgrade: %v; echo byte-exact: %v", err, bytes.Equal(got, sent))
	}
	p.c.Close()
	<-done
	waitUntil(t, "the upgraded connection's slot to free", func() bool { return s.Stats()[0].Active == 0 })
}

func TestHTTPProxyEarlyAnswer(t *testing.T) {
	// A target that answers 413 without reading a large body: the client
	// gets the answer, and the stream is not used again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			w.Header().Set("Connection", "keep-alive")
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, "ok")
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}}
	go srv.Serve(ln)
	defer srv.Close()
	o := newTestOverlay()
	o.targets["web"] = ln.Addr().String()
	s := newServer(t, o, proxy.Config{HTTP: "127.0.0.1:0"})
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
	body := randomBytes(8 << 20)
	io.WriteString(p.c, fmt.Sprintf("POST http://web.db.p2p/ HTTP/1.1\r\nHost: web.db.p2p\r\nContent-Length: %d\r\n\r\n", len(body)))
	go p.c.Write(body)
	resp, err := http.ReadResponse(p.br, &http.Request{Method: "POST"})
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("POST: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	// A new client connection works, whatever became of the first.
	if resp, body := dialProxy(t, s.Addr(proxy.KindHTTP).String()).do(t, "GET", "GET http://web.db.p2p/ HTTP/1.1", "Host: x"); resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("GET: %s %q", resp.Status, body)
	}
}
