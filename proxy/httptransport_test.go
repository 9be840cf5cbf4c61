package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

// scriptService is a service target that is a raw TCP server on loopback
// whose every connection runs handle: for answers that a real HTTP server
// would not give. handle gets the connection's number, from 1. Cleanup
// closes the listener and every connection, and waits for the handlers.
type scriptService struct {
	ln    net.Listener
	n     atomic.Int64 // connections accepted
	mu    sync.Mutex   // guards conns
	conns []net.Conn
	wg    sync.WaitGroup
}

func newScriptService(t *testing.T, handle func(n int64, c net.Conn, br *bufio.Reader)) *scriptService {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ss := &scriptService{ln: ln}
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ss.mu.Lock()
			ss.conns = append(ss.conns, c)
			ss.mu.Unlock()
			n := ss.n.Add(1)
			ss.wg.Add(1)
			go func() {
				defer ss.wg.Done()
				defer c.Close()
				handle(n, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(ss.close)
	return ss
}

func (ss *scriptService) close() {
	ss.ln.Close()
	ss.mu.Lock()
	for _, c := range ss.conns {
		c.Close()
	}
	ss.mu.Unlock()
	ss.wg.Wait()
}

func (ss *scriptService) addr() string { return ss.ln.Addr().String() }

// httpVia returns an HTTP proxy over a test overlay whose service "web" on
// peer "db" is ss.
func httpVia(t *testing.T, ss *scriptService, cfg proxy.Config) *proxy.Server {
	s, _ := loggedHTTPVia(t, ss, cfg)
	return s
}

// loggedHTTPVia is httpVia with the proxy's log.
func loggedHTTPVia(t *testing.T, ss *scriptService, cfg proxy.Config) (*proxy.Server, *logBuffer) {
	t.Helper()
	o := newTestOverlay()
	o.targets["web"] = ss.addr()
	s, logs := newLoggedServer(t, o)
	cfg.HTTP = "127.0.0.1:0"
	if err := s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the service goes before the Server's Close,
	// which then returns even if the proxy holds a stream to the service
	// (as the code before these tests did).
	t.Cleanup(ss.close)
	return s, logs
}

// TestHTTPProxyRetriesOnlyReplayable sends a request on a kept stream whose
// target reads it and then drops the connection without an answer, as one
// that crashed while running it would. Like net/http's Transport, the proxy
// sends it again on a new stream only when that is safe: GET, HEAD and
// requests with an Idempotency-Key reach the target twice and the client
// gets the answer; a DELETE and an empty POST reach it once and the client
// gets 502 (the old code sent every request without a body twice).
func TestHTTPProxyRetriesOnlyReplayable(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{} // path -> requests the target read
	ss := newScriptService(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for first := true; ; first = false {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if req.URL.Path != "/warm" {
				mu.Lock()
				seen[req.URL.Path]++
				mu.Unlock()
				if !first {
					return // read, maybe run, and the connection drops
				}
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	s := httpVia(t, ss, proxy.Config{})
	for _, tt := range []struct {
		method, path string
		extra        []string
		code, times  int
	}{
		{"GET", "/get", nil, 200, 2},
		{"HEAD", "/head", nil, 200, 2},
		{"POST", "/keyed", []string{"Content-Length: 0", "Idempotency-Key: 8e03978e"}, 200, 2},
		{"DELETE", "/account", nil, 502, 1},
		{"POST", "/order", []string{"Content-Length: 0"}, 502, 1},
	} {
		p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
		if resp, body := p.do(t, "GET", "GET http://web.db.p2p/warm HTTP/1.1", "Host: web.db.p2p"); resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("warm-up: %s %q", resp.Status, body)
		}
		line := tt.method + " http://web.db.p2p" + tt.path + " HTTP/1.1"
		resp, _ := p.do(t, tt.method, append([]string{line, "Host: web.db.p2p"}, tt.extra...)...)
		mu.Lock()
		n := seen[tt.path]
		mu.Unlock()
		if resp.StatusCode != tt.code || n != tt.times {
			t.Errorf("%s: client got %s, the target read it %d time(s); want %d and %d", line, resp.Status, n, tt.code, tt.times)
		}
	}
}

// TestHTTPProxyBadAnswer has a service answer what is not HTTP, or close
// before its response head ends: the client gets 502 with one line that
// says what the service did, quoting at most a little of its bytes, escaped
// (the old code said "overlay error" for all of them,
// and "peer unreachable" with the daemon's classifier).
func TestHTTPProxyBadAnswer(t *testing.T) {
	long := strings.Repeat("x", 4096)
	answers := map[string]string{
		"/garbage": "HELLO\r\n\r\n",
		"/silent":  "",
		"/cut":     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
		"/control": "HTTP/1.1 200 OK\r\nBad Header\x1b[31m\r\n\r\n",
		"/long":    long + "\r\n\r\n",
	}
	ss := newScriptService(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.WriteString(c, answers[req.URL.Path])
	})
	s := httpVia(t, ss, proxy.Config{})
	const svc = `service "web" on peer "db"`
	for _, tt := range []struct{ path, body string }{
		{"/garbage", "p2pd: the answer of " + svc + ` was not valid HTTP: malformed HTTP response "HELLO"`},
		{"/silent", "p2pd: " + svc + " closed the connection without an answer"},
		{"/cut", "p2pd: " + svc + " closed the connection in the middle of its response head"},
		{"/control", "p2pd: the answer of " + svc + ` was not valid HTTP: malformed MIME header: missing colon: "Bad Header\x1b[31m"`},
		{"/long", "p2pd: the answer of " + svc + ` was not valid HTTP: malformed HTTP response "` + long[:200-len(`malformed HTTP response "`)] + "..."},
	} {
		resp, body := dialProxy(t, s.Addr(proxy.KindHTTP).String()).do(t, "GET", "GET http://web.db.p2p"+tt.path+" HTTP/1.1", "Host: web.db.p2p")
		if resp.StatusCode != 502 || string(body) != tt.body+"\n" {
			t.Errorf("%s: %s %q; want 502 %q", tt.path, resp.Status, body, tt.body)
		}
	}
}

// TestHTTPProxyUnaskedUpgrade has a service answer 101 Switching Protocols
// to a request that asked for no upgrade, or for another protocol: the
// client gets 502 with a line that says so, and the stream to the service
// is closed at once (the old code answered "overlay error" and left each
// stream open for good: ReverseProxy drops such a response unclosed).
func TestHTTPProxyUnaskedUpgrade(t *testing.T) {
	ended := make(chan int64, 4)
	ss := newScriptService(t, func(n int64, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		io.Copy(io.Discard, br) // until the proxy closes the stream
		ended <- n
	})
	s := httpVia(t, ss, proxy.Config{})
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
	const svc = `service "web" on peer "db"`
	for i, tt := range []struct {
		lines []string
		body  string
	}{
		{[]string{"GET http://web.db.p2p/ HTTP/1.1", "Host: web.db.p2p"},
			"p2pd: " + svc + " answered 101 Switching Protocols to a request that asked for no upgrade"},
		{[]string{"GET http://web.db.p2p/ HTTP/1.1", "Host: web.db.p2p", "Connection: Upgrade", "Upgrade: h2c"},
			"p2pd: " + svc + ` answered 101 Switching Protocols to "websocket" when the request asked for "h2c"`},
	} {
		resp, body := p.do(t, "GET", tt.lines...)
		if resp.StatusCode != 502 || string(body) != tt.body+"\n" {
			t.Errorf("request %d: %s %q; want 502 %q", i, resp.Status, body, tt.body)
		}
		select {
		case <-ended:
		case <-time.After(failBound):
			t.Fatalf("request %d: the stream to the service is still open", i)
		}
	}
}

// TestHTTPProxyResponseHeadBound has a service send a response head that
// does not end (a header line of up to 32 MiB), and one that sends 103
// Early Hints without end: the proxy stops reading at 64 KiB of head and at
// 16 interim responses, aborts the stream and answers 502 with a line that
// names the bound; each bound is logged once for two hits. A service within
// the bounds is relayed, its 103s too. The old code buffered the whole
// 32 MiB line and relayed every 103.
func TestHTTPProxyResponseHeadBound(t *testing.T) {
	const endless = 32 << 20
	stopped := make(chan int64, 2) // bytes of head written before the proxy cut the stream
	ss := newScriptService(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		bw := bufio.NewWriter(c)
		switch req.URL.Path {
		case "/big":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: ")
			chunk := []byte(strings.Repeat("a", 64<<10))
			var wrote int64
			for wrote < endless {
				c.SetWriteDeadline(time.Now().Add(failBound))
				n, err := c.Write(chunk)
				wrote += int64(n)
				if err != nil {
					break
				}
			}
			stopped <- wrote
			io.WriteString(c, "\r\nContent-Length: 2\r\n\r\nok")
			return
		case "/hints":
			for range 100 {
				io.WriteString(bw, "HTTP/1.1 103 Early Hints\r\nLink: </x.css>; rel=preload\r\n\r\n")
			}
		case "/few":
			io.WriteString(bw, "HTTP/1.1 100 Continue\r\n\r\n")
			for range 2 {
				io.WriteString(bw, "HTTP/1.1 103 Early Hints\r\nLink: </x.css>; rel=preload\r\n\r\n")
			}
		}
		io.WriteString(bw, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		bw.Flush()
		io.Copy(io.Discard, br)
	})
	s, logs := loggedHTTPVia(t, ss, proxy.Config{})
	addr := s.Addr(proxy.KindHTTP).String()
	const svc = `service "web" on peer "db"`
	for i := range 2 {
		resp, body := dialProxy(t, addr).do(t, "GET", "GET http://web.db.p2p/big HTTP/1.1", "Host: web.db.p2p")
		if want := "p2pd: " + svc + " sent a response head over 64 KiB\n"; resp.StatusCode != 502 || string(body) != want {
			t.Errorf("endless head %d: %s %q; want 502 %q", i, resp.Status, body, want)
		}
		select {
		case n := <-stopped:
			if n >= endless {
				t.Errorf("endless head %d: the proxy read all %d MiB of it", i, n>>20)
			}
		case <-time.After(failBound):
			t.Fatalf("endless head %d: the service is still writing", i)
		}
	}
	for i, tt := range []struct {
		path        string
		hints, code int
		body        string
	}{
		{"/hints", 16, 502, "p2pd: " + svc + " sent more than 16 interim (1xx) responses\n"},
		{"/hints", 16, 502, "p2pd: " + svc + " sent more than 16 interim (1xx) responses\n"},
		{"/few", 2, 200, "ok"},
	} {
		p := dialProxy(t, addr)
		io.WriteString(p.c, "GET http://web.db.p2p"+tt.path+" HTTP/1.1\r\nHost: web.db.p2p\r\n\r\n")
		hints := 0
		for {
			resp, err := http.ReadResponse(p.br, nil)
			if err != nil {
				t.Fatalf("%s %d: %v", tt.path, i, err)
			}
			if resp.StatusCode == http.StatusEarlyHints {
				hints++
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			if hints != tt.hints || resp.StatusCode != tt.code || string(body) != tt.body {
				t.Errorf("%s %d: %d 103s, then %s %q; want %d, then %d %q", tt.path, i, hints, resp.Status, body, tt.hints, tt.code, tt.body)
			}
			break
		}
	}
	for _, limit := range []string{"limit=response_head_bytes", "limit=interim_responses"} {
		if l := logs.lines("level=WARN", "http proxy: request ended at a bound", limit, "peer=db", "service=web"); len(l) != 1 {
			t.Errorf("%d lines with %s for 2 hits; want 1\n%s", len(l), limit, logs)
		}
	}
	if n := s.Stats()[0].Errors["other"]; n != 4 {
		t.Errorf("errors[other] = %d, want 4", n)
	}
}

// silentService answers nothing: each connection reads a request, says so
// on heard, and waits for the proxy to close the stream, which it reports
// on ended. With a head, it sends that first and then says nothing more.
func silentService(t *testing.T, head string) (ss *scriptService, heard, ended chan struct{}) {
	heard, ended = make(chan struct{}, 8), make(chan struct{}, 8)
	ss = newScriptService(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, head)
		heard <- struct{}{}
		io.Copy(io.Discard, br) // until the proxy closes the stream
		ended <- struct{}{}
	})
	return ss, heard, ended
}

// await waits for one event on ch.
func await(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(failBound):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestHTTPProxyClientLeaves has a client leave while the service has not
// answered, and while it is in the middle of its body and says nothing
// more: the proxy closes the stream to the service and frees the client's
// slot. The old code kept both for good, its handler blocked on the
// service.
func TestHTTPProxyClientLeaves(t *testing.T) {
	for _, head := range []string{"", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nten bytes.\r\n"} {
		ss, heard, ended := silentService(t, head)
		s := httpVia(t, ss, proxy.Config{})
		p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
		io.WriteString(p.c, "GET http://web.db.p2p/ HTTP/1.1\r\nHost: web.db.p2p\r\n\r\n")
		await(t, heard, "the service to read the request")
		if head != "" {
			resp, err := http.ReadResponse(p.br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("response head: %v %v", resp, err)
			}
			if b := make([]byte, 10); func() error { _, err := io.ReadFull(resp.Body, b); return err }() != nil || string(b) != "ten bytes." {
				t.Fatalf("first bytes of the body: %q", b)
			}
		}
		p.c.Close()
		await(t, ended, "the stream to the service to close")
		waitUntil(t, "the client's slot to free", func() bool { return s.Stats()[0].Active == 0 })
	}
}

// TestHTTPProxyResponseTimeout has a service that reads a request and says
// nothing: after ResponseTimeout the client gets 504 with a line that says
// so, the stream to the service is closed, and one line is logged for two
// such requests. The timeout bounds silence, not the exchange: a service
// that sends 102 Processing now and then, and an upload that takes longer
// than the timeout, are not cut. The old code waited for the service for
// good.
func TestHTTPProxyResponseTimeout(t *testing.T) {
	const timeout = time.Second
	ended := make(chan struct{}, 4)
	ss := newScriptService(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		switch req.URL.Path {
		case "/silent":
			io.Copy(io.Discard, br)
			ended <- struct{}{}
			return
		case "/processing":
			for range 5 {
				io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\n")
				time.Sleep(timeout / 4)
			}
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	})
	s, logs := loggedHTTPVia(t, ss, proxy.Config{ResponseTimeout: timeout})
	addr := s.Addr(proxy.KindHTTP).String()
	for i := range 2 {
		resp, body := dialProxy(t, addr).do(t, "GET", "GET http://web.db.p2p/silent HTTP/1.1", "Host: web.db.p2p")
		if want := "p2pd: service \"web\" on peer \"db\" sent no response within 1s\n"; resp.StatusCode != 504 || string(body) != want {
			t.Errorf("silent service %d: %s %q; want 504 %q", i, resp.Status, body, want)
		}
		await(t, ended, "the stream to the silent service to close")
	}
	if l := logs.lines("level=WARN", "http proxy: request ended at a bound", "limit=response_timeout", "service=web"); len(l) != 1 {
		t.Errorf("%d log lines for 2 timeouts; want 1\n%s", len(l), logs)
	}
	p := dialProxy(t, addr)
	io.WriteString(p.c, "GET http://web.db.p2p/processing HTTP/1.1\r\nHost: web.db.p2p\r\n\r\n")
	for {
		resp, err := http.ReadResponse(p.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusProcessing {
			continue
		}
		if resp.StatusCode != 200 {
			t.Errorf("service that sends 102 Processing: %s, want 200", resp.Status)
		}
		break
	}
	p = dialProxy(t, addr)
	io.WriteString(p.c, "POST http://web.db.p2p/upload HTTP/1.1\r\nHost: web.db.p2p\r\nContent-Length: 15\r\n\r\n")
	for _, b := range []byte("slow but steady") {
		p.c.Write([]byte{b})
		time.Sleep(timeout / 10)
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(body) != "slow but steady" {
		t.Errorf("upload longer than the timeout: %s %q", resp.Status, body)
	}
}

// TestHTTPProxyCloseAbortsExchanges closes the Server with 300 ms to spare
// while a plain request waits for a silent service and an upgraded
// connection is open: Close returns, and both streams to the service are
// closed. The old code's Close waited for the service for good.
func TestHTTPProxyCloseAbortsExchanges(t *testing.T) {
	ended := make(chan struct{}, 2)
	heard := make(chan struct{}, 2)
	ss := newScriptService(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Header.Get("Upgrade") == "echo" {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		}
		heard <- struct{}{}
		io.Copy(io.Discard, br)
		ended <- struct{}{}
	})
	o := newTestOverlay()
	o.targets["web"] = ss.addr()
	s := proxy.NewServer(o, classify, nil)
	if err := s.Apply(proxy.Config{HTTP: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr(proxy.KindHTTP).String()
	plain, upgraded := dialProxy(t, addr), dialProxy(t, addr)
	io.WriteString(plain.c, "GET http://web.db.p2p/ HTTP/1.1\r\nHost: web.db.p2p\r\n\r\n")
	io.WriteString(upgraded.c, "GET http://web.db.p2p/ HTTP/1.1\r\nHost: web.db.p2p\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if resp, err := http.ReadResponse(upgraded.br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	await(t, heard, "the service to read the first request")
	await(t, heard, "the service to read the second request")
	closed := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		s.Close(ctx)
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(failBound):
		// The service and the clients go: the streams end, and Close
		// with them.
		ss.close()
		plain.c.Close()
		upgraded.c.Close()
		<-closed
		t.Fatal("Close with a 300 ms context did not return")
	}
	await(t, ended, "the first stream to the service to close")
	await(t, ended, "the second stream to the service to close")
}

// TestHTTPProxyStalledBody has clients announce a request body of 10 bytes
// and send none, with max_connections 1: whether the service waits for
// the body, answers at once, or the proxy refuses the request itself, the
// client gets its answer (400 naming the stall for the waiting service) and
// its slot is free within the handshake timeout, so that the next client
// gets in; the stream to the waiting service is closed, and two stalls make
// one log line. A client that keeps sending, slower in all than the
// timeout, is not cut. The old code held the slot for good, and the client
// whose service answered at once never got that answer.
func TestHTTPProxyStalledBody(t *testing.T) {
	const idle = time.Second
	ended := make(chan struct{}, 4)
	ss := newScriptService(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		switch req.URL.Path {
		case "/wait":
			io.Copy(io.Discard, br)
			ended <- struct{}{}
		case "/early":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		default:
			body, _ := io.ReadAll(req.Body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	s, logs := loggedHTTPVia(t, ss, proxy.Config{HandshakeTimeout: idle, MaxConnections: 1})
	addr := s.Addr(proxy.KindHTTP).String()
	stalled := "p2pd: the request body stalled: no byte came for 1s\n"
	for i, tt := range []struct {
		host, path string
		code       int
		body       string
	}{
		{"web.db.p2p", "/wait", 400, stalled},
		{"web.db.p2p", "/wait", 400, stalled},
		{"web.db.p2p", "/early", 200, "ok"},
		{"nosuch.db.p2p", "/", 404, "p2pd: unknown service: service \"nosuch\" on peer \"db\"\n"},
	} {
		p := dialProxy(t, addr)
		io.WriteString(p.c, "POST http://"+tt.host+tt.path+" HTTP/1.1\r\nHost: "+tt.host+"\r\nContent-Length: 10\r\n\r\n")
		resp, err := http.ReadResponse(p.br, nil)
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, tt.path, err)
		}
		if body, _ := io.ReadAll(resp.Body); resp.StatusCode != tt.code || string(body) != tt.body {
			t.Errorf("request %d to %s: %s %q; want %d %q", i, tt.path, resp.Status, body, tt.code, tt.body)
		}
		if tt.path == "/wait" {
			await(t, ended, "the stream to the waiting service to close")
		}
		waitUntil(t, fmt.Sprintf("the slot of request %d to free", i), func() bool { return s.Stats()[0].Active == 0 })
	}
	if l := logs.lines("level=WARN", "http proxy: request ended at a bound", "limit=request_body_idle", "service=web"); len(l) != 1 {
		t.Errorf("%d log lines for 2 stalls; want 1\n%s", len(l), logs)
	}
	p := dialProxy(t, addr)
	io.WriteString(p.c, "POST http://web.db.p2p/echo HTTP/1.1\r\nHost: web.db.p2p\r\nContent-Length: 15\r\n\r\n")
	for _, b := range []byte("slow but steady") {
		p.c.Write([]byte{b})
		time.Sleep(idle / 10)
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(body) != "slow but steady" {
		t.Errorf("a body slower in all than the timeout: %s %q", resp.Status, body)
	}
}

// TestHTTPProxyStrayBytes has a service send a second, forged response
// after its answer on a kept stream: in the same write, and later while the
// stream sits idle. The proxy drops the stream either way (the service sees
// it close before the client asks again), so the client's next request gets
// its own answer from a new stream. The old code kept such a stream, and
// the forged response became the answer to the client's next request.
func TestHTTPProxyStrayBytes(t *testing.T) {
	const forged = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Forged: 1\r\n\r\nforged"
	forge, dropped := make(chan struct{}), make(chan struct{}, 2)
	ss := newScriptService(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/together":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"+forged)
			case "/later":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
				<-forge
				io.WriteString(c, forged)
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")
				continue
			}
			io.Copy(io.Discard, br) // until the proxy closes the stream
			dropped <- struct{}{}
			return
		}
	})
	s := httpVia(t, ss, proxy.Config{})
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
	for _, path := range []string{"/together", "/later"} {
		if resp, body := p.do(t, "GET", "GET http://web.db.p2p"+path+" HTTP/1.1", "Host: web.db.p2p"); resp.StatusCode != 200 || string(body) != "one" {
			t.Fatalf("%s: %s %q", path, resp.Status, body)
		}
		if path == "/later" {
			forge <- struct{}{}
		}
		select {
		case <-dropped:
		case <-time.After(failBound):
			ss.close() // let the stream end, so that the proxy's Close returns
			t.Fatalf("%s: the proxy kept a stream on which the service sent bytes nobody asked for", path)
		}
		resp, body := p.do(t, "GET", "GET http://web.db.p2p/next HTTP/1.1", "Host: web.db.p2p")
		if resp.StatusCode != 200 || string(body) != "two" || resp.Header.Get("X-Forged") != "" {
			t.Errorf("after %s, the next request got %s %q (X-Forged %q); want 200 \"two\"", path, resp.Status, body, resp.Header.Get("X-Forged"))
		}
	}
}

// TestHTTPProxyTimeoutNotRetried has a GET on a kept stream meet a service
// that says nothing: the client gets one 504 after one timeout, and the
// service reads the request once. A retry is for a stream that ended
// unanswered; before this, a timed-out GET was sent again on a new stream
// and waited out a second timeout.
func TestHTTPProxyTimeoutNotRetried(t *testing.T) {
	var silent atomic.Int64
	ss := newScriptService(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/slow" {
				silent.Add(1)
				io.Copy(io.Discard, br)
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	s := httpVia(t, ss, proxy.Config{ResponseTimeout: 300 * time.Millisecond})
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
	if resp, _ := p.do(t, "GET", "GET http://web.db.p2p/warm HTTP/1.1", "Host: web.db.p2p"); resp.StatusCode != 200 {
		t.Fatalf("warm-up: %s", resp.Status)
	}
	resp, _ := p.do(t, "GET", "GET http://web.db.p2p/slow HTTP/1.1", "Host: web.db.p2p")
	if resp.StatusCode != 504 || silent.Load() != 1 {
		t.Errorf("GET to a silent service on a kept stream: %s, the service read it %d time(s); want 504 and once", resp.Status, silent.Load())
	}
}
