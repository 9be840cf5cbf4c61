package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/proxy"
)

func newLoggedServer(t *testing.T, o *testOverlay) (*proxy.Server, *logBuffer) {
	logs := new(logBuffer)
	s := proxy.NewServer(o, classify, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, logs
}

// echoThroughSOCKS checks one connection through the SOCKS5 proxy at addr.
func echoThroughSOCKS(t *testing.T, addr string) {
	t.Helper()
	c, rep, err := socksConnect(t, addr, "", "", socksName("echo.db.p2p"))
	if err != nil || rep != 0 {
		t.Fatalf("reply %#x, %v", rep, err)
	}
	c.Write([]byte("ping"))
	if b := readN(t, c, 4); string(b) != "ping" {
		t.Fatalf("echo %q", b)
	}
	c.Close()
}

func TestServerApply(t *testing.T) {
	o := newTestOverlay()
	o.targets["echo"] = newEchoServer(t).Addr()
	o.targets["web"] = newWebBackend(t, []byte("ok")).addr
	s, _ := newLoggedServer(t, o)
	if err := s.Apply(proxy.Config{SOCKS5: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	first := s.Addr(proxy.KindSOCKS5).String()
	echoThroughSOCKS(t, first)
	// A connection that outlives the reload.
	held, rep, err := socksConnect(t, first, "", "", socksName("echo.db.p2p"))
	if err != nil || rep != 0 {
		t.Fatal(rep, err)
	}

	// Same SOCKS5 address: the socket stays; HTTP comes up; the cap changes.
	if err := s.Apply(proxy.Config{SOCKS5: "127.0.0.1:0", HTTP: "127.0.0.1:0", MaxConnections: 7}); err != nil {
		t.Fatal(err)
	}
	if got := s.Addr(proxy.KindSOCKS5).String(); got != first {
		t.Fatalf("socks5 moved from %s to %s on a reload that kept its address", first, got)
	}
	if st := s.Stats(); len(st) != 2 || st[0].Kind != "socks5" || st[1].Kind != "http" || st[0].MaxConnections != 7 {
		t.Fatalf("stats %+v", st)
	}
	resp, body := dialProxy(t, s.Addr(proxy.KindHTTP).String()).do(t, "GET", "GET http://web.db.p2p/ HTTP/1.1", "Host: web.db.p2p")
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("http: %s %q", resp.Status, body)
	}

	// A listen that fails changes nothing.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := s.Apply(proxy.Config{SOCKS5: busy.Addr().String()}); err == nil || !strings.Contains(err.Error(), "socks5") {
		t.Fatalf("Apply on a busy port: %v, want an error naming socks5", err)
	}
	if s.Addr(proxy.KindHTTP) == nil || s.Addr(proxy.KindSOCKS5).String() != first {
		t.Fatal("a failed Apply changed the listeners")
	}

	// Off: both listeners close; the held connection goes on.
	if err := s.Apply(proxy.Config{}); err != nil {
		t.Fatal(err)
	}
	if len(s.Stats()) != 0 {
		t.Fatalf("stats %+v after turning both off", s.Stats())
	}
	if _, err := net.Dial("tcp", first); err == nil {
		t.Fatal("the old socks5 address still accepts")
	}
	held.Write([]byte("pong"))
	if b := readN(t, held, 4); string(b) != "pong" {
		t.Fatalf("held connection after the reload: %q", b)
	}
}

func TestServerAcceptSurvivesEMFILE(t *testing.T) {
	o := newTestOverlay()
	o.targets["echo"] = newEchoServer(t).Addr()
	s, logs := newLoggedServer(t, o)
	var el *emfileListener
	proxy.WrapServerListen(s, func(ln net.Listener) net.Listener {
		el = &emfileListener{Listener: ln}
		el.fails.Store(5)
		return el
	})
	if err := s.Apply(proxy.Config{SOCKS5: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	echoThroughSOCKS(t, s.Addr(proxy.KindSOCKS5).String())
	if st := s.Stats()[0]; st.AcceptErrors != 5 {
		t.Fatalf("accept errors %d, want 5", st.AcceptErrors)
	}
	if w := logs.lines("socks5 proxy: accept failing", "too many open files", "rlimit_nofile", "fix="); len(w) != 1 {
		t.Fatalf("want one warning with the fix, got %q\n%s", w, logs)
	}
	if w := logs.lines("socks5 proxy: accepting again after 5 failed accepts"); len(w) != 1 {
		t.Fatalf("want one line when accepts work again, got %q", w)
	}
}

func TestServerLogsOverlayErrorsOnce(t *testing.T) {
	s, logs := newLoggedServer(t, newTestOverlay())
	if err := s.Apply(proxy.Config{SOCKS5: "127.0.0.1:0", HTTP: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	socksConnect(t, s.Addr(proxy.KindSOCKS5).String(), "", "", socksName("secret.db.p2p"))
	dialProxy(t, s.Addr(proxy.KindHTTP).String()).do(t, "GET", "GET http://nosuch.db.p2p/ HTTP/1.1", "Host: x")
	waitUntil(t, "two log lines", func() bool { return len(logs.lines("connection failed")) == 2 })
	if l := logs.lines("level=INFO", "socks5 proxy: connection failed", "peer=db", "service=secret", "reason=access_denied"); len(l) != 1 {
		t.Errorf("socks5 denial: %q\n%s", l, logs)
	}
	if l := logs.lines("level=INFO", "http proxy: connection failed", "peer=db", "service=nosuch", "reason=unknown_service"); len(l) != 1 {
		t.Errorf("http unknown service: %q\n%s", l, logs)
	}
}

func TestServerCloseAbortsAfterDrain(t *testing.T) {
	o := newTestOverlay()
	o.targets["echo"] = newEchoServer(t).Addr()
	s, _ := newLoggedServer(t, o)
	if err := s.Apply(proxy.Config{SOCKS5: "127.0.0.1:0", HTTP: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	c, rep, err := socksConnect(t, s.Addr(proxy.KindSOCKS5).String(), "", "", socksName("echo.db.p2p"))
	if err != nil || rep != 0 {
		t.Fatal(rep, err)
	}
	p := dialProxy(t, s.Addr(proxy.KindHTTP).String())
	if resp, _ := p.do(t, "CONNECT", "CONNECT echo.db.p2p:1 HTTP/1.1", "Host: x"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	s.Close(ctx)
	if time.Since(start) > failBound {
		t.Fatal("Close did not end")
	}
	for i, conn := range []net.Conn{c, p.c} {
		conn.SetDeadline(time.Now().Add(failBound))
		// EOF or a reset both mean the proxy let go; a timeout means not.
		if _, err := io.ReadAll(conn); err != nil && !isReset(err) {
			t.Fatalf("connection %d after Close: %v", i, err)
		}
	}
	if err := s.Apply(proxy.Config{SOCKS5: "127.0.0.1:0"}); err == nil {
		t.Fatal("Apply after Close succeeded")
	}
}
