package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// TestBackendProtocols runs the echo and bulk services on loopback and
// checks the bytes that come back.
func TestBackendProtocols(t *testing.T) {
	echo, bulk := listenTCP(t, func(c net.Conn) error { return serveEcho(c) }), listenTCP(t, func(c net.Conn) error { return serveBulk(c) })
	lb := loopbackTopo()
	sys := &system{name: "tcp", dial: tcpDialer(lb, [2]string{echo.Addr().String(), bulk.Addr().String()})}
	ctx := context.Background()
	if err := echoOnce(ctx, sys, 5*time.Second); err != nil {
		t.Fatalf("echo: %v", err)
	}
	c, err := sys.dial(ctx, targetBulk)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 3*ioBufferSize + 17
	if err := bulkDown(c, n); err != nil {
		t.Fatalf("bulk down: %v", err)
	}
	// The source closes after n bytes: nothing more arrives.
	if m, err := c.Read(make([]byte, 1)); m != 0 || err != io.EOF {
		t.Fatalf("after %d bytes: read %d, %v; want 0, EOF", n, m, err)
	}
	if _, err := measureBulk(ctx, sys, 8<<20, 8); err != nil {
		t.Fatalf("bulk over 8 connections: %v", err)
	}
	if _, _, err := measureRTT(ctx, sys, 100); err != nil {
		t.Fatalf("rtt: %v", err)
	}
	if _, _, _, err := measureRR(ctx, sys, 8, 50*time.Millisecond); err != nil {
		t.Fatalf("request/response, 8 connections: %v", err)
	}
}

func TestBulkUp(t *testing.T) {
	bulk := listenTCP(t, func(c net.Conn) error { return serveBulk(c) })
	c, err := net.Dial("tcp", bulk.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hdr := []byte{bulkOpUp, 0, 0, 0, 0, 0, 0, 0x10, 0}
	c.Write(hdr)
	if err := writeN(c, 0x1000); err != nil {
		t.Fatal(err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil || ack[0] != bulkAck {
		t.Fatalf("ack %q, %v; want %q", ack[0], err, bulkAck)
	}
}

// quicSystem runs the quic-go server of the raw baseline (no targets) or of
// the tunnel (targets) on loopback and returns a system dialing it over one
// connection; the test's cleanup closes both.
func quicSystem(t *testing.T, name string, targets []string) *system {
	t.Helper()
	tlsConf, err := benchServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", tlsConf, benchQUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := startQtunServer(ln, targets)
	t.Cleanup(srv.close)
	qc, err := dialQUICFrom(context.Background(), loopbackTopo(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(qc.close)
	return &system{name: name, dial: quicStreamDialer(qc)}
}

// TestQuicRaw serves echo and bulk over quic-go in process, as the raw
// quic-go baseline's server does, and checks the bytes.
func TestQuicRaw(t *testing.T) {
	sys := quicSystem(t, sysQuicRaw, nil)
	if _, err := measureBulk(context.Background(), sys, 4<<20, 2); err != nil {
		t.Fatalf("bulk: %v", err)
	}
	if _, _, err := measureRTT(context.Background(), sys, 100); err != nil {
		t.Fatalf("rtt: %v", err)
	}
	// One stream per client on the one connection.
	if _, _, _, err := measureRR(context.Background(), sys, 32, 50*time.Millisecond); err != nil {
		t.Fatalf("request/response, 32 streams: %v", err)
	}
}

// TestQuicTunnel carries echo and bulk through a quic-go tunnel server that
// connects to TCP backends.
func TestQuicTunnel(t *testing.T) {
	echo, bulk := listenTCP(t, func(c net.Conn) error { return serveEcho(c) }), listenTCP(t, func(c net.Conn) error { return serveBulk(c) })
	sys := quicSystem(t, sysQtun, []string{echo.Addr().String(), bulk.Addr().String()})
	if _, err := measureBulk(context.Background(), sys, 4<<20, 1); err != nil {
		t.Fatalf("bulk through the tunnel: %v", err)
	}
	if err := echoOnce(context.Background(), sys, 5*time.Second); err != nil {
		t.Fatalf("echo through the tunnel: %v", err)
	}
}

// TestMeasureRR checks that the concurrent request/response figure opens
// its connections once, all before the clock starts, keeps them all open
// together, counts round trips and fails on a wrong echo.
func TestMeasureRR(t *testing.T) {
	var mu sync.Mutex
	var accepted, open, maxOpen int
	echo := listenTCP(t, func(c net.Conn) error {
		mu.Lock()
		accepted++
		open++
		maxOpen = max(maxOpen, open)
		mu.Unlock()
		defer func() {
			mu.Lock()
			open--
			mu.Unlock()
		}()
		return serveEcho(c)
	})
	sys := &system{name: sysTCP, dial: tcpDialer(loopbackTopo(), [2]string{echo.Addr().String(), ""})}
	const clients = 8
	rate, p50, p99, err := measureRR(context.Background(), sys, clients, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// Each connection does rrWarmup round trips and at least one timed.
	if rate < clients/0.1/2 || p50 <= 0 || p99 < p50 {
		t.Fatalf("rate %.0f/s, p50 %.1f µs, p99 %.1f µs", rate, p50, p99)
	}
	mu.Lock()
	if accepted != clients || maxOpen != clients {
		t.Fatalf("%d connections accepted, %d open at once; want %d and %d", accepted, maxOpen, clients, clients)
	}
	mu.Unlock()

	flip := listenTCP(t, func(c net.Conn) error {
		b := make([]byte, rttMsgSize)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				return err
			}
			b[0]++
			if _, err := c.Write(b); err != nil {
				return err
			}
		}
	})
	bad := &system{name: sysTCP, dial: tcpDialer(loopbackTopo(), [2]string{flip.Addr().String(), ""})}
	if _, _, _, err := measureRR(context.Background(), bad, 2, 10*time.Millisecond); err == nil {
		t.Fatal("a wrong echo passed")
	}
}

func TestPercentiles(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(100-i) * time.Microsecond // 100 µs down to 1 µs
	}
	if p50, p99 := percentilesUS(d); p50 != 51 || p99 != 100 {
		t.Fatalf("p50 %v, p99 %v; want 51 and 100", p50, p99)
	}
	if p50, p99 := percentilesUS(nil); p50 != 0 || p99 != 0 {
		t.Fatalf("no samples: p50 %v, p99 %v; want 0 and 0", p50, p99)
	}
}

// TestRelayHoldsThenDelivers checks that held datagrams arrive, in order,
// only after release, and that answers find their way back.
func TestRelayHoldsThenDelivers(t *testing.T) {
	server, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for _, delay := range []time.Duration{0, time.Millisecond} {
		rl, err := newRelay(server.LocalAddr().String(), delay, true)
		if err != nil {
			t.Fatal(err)
		}
		client, err := net.Dial("udp", rl.addr())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"one", "two", "three"} {
			client.Write([]byte(m))
		}
		<-rl.heldSignal()
		server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		buf := make([]byte, 100)
		if n, _, err := server.ReadFromUDP(buf); err == nil {
			t.Fatalf("delay %s: server got %q while the relay held", delay, buf[:n])
		}
		rl.release()
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got []string
		var from *net.UDPAddr
		for len(got) < 3 {
			n, a, err := server.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("delay %s: after release: %v (got %q)", delay, err, got)
			}
			got, from = append(got, string(buf[:n])), a
		}
		if strings.Join(got, ",") != "one,two,three" {
			t.Fatalf("delay %s: got %q, want one,two,three in order", delay, got)
		}
		server.WriteToUDP([]byte("answer"), from)
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := client.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], []byte("answer")) {
			t.Fatalf("delay %s: client got %q, %v; want answer", delay, buf[:n], err)
		}
		client.Close()
		rl.close()
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{5, 1, 3, 2})
	if s.Median != 2.5 || s.Min != 1 || s.Max != 5 {
		t.Fatalf("summarize: %+v; want median 2.5, min 1, max 5", s)
	}
	if got := fmtNum(1234.4); got != "1234" {
		t.Fatalf("fmtNum(1234.4) = %q", got)
	}
	if got := fmtNum(0.01234); got != "0.0123" {
		t.Fatalf("fmtNum(0.01234) = %q", got)
	}
}

func TestReportRatios(t *testing.T) {
	r := &runner{res: newResults(), o: options{}}
	r.res.add("bulk1", sysP2PD, 80)
	r.res.add("bulk1", sysQuicRaw, 100)
	r.res.add("bulk1", sysTCP, 400)
	rep := r.buildReport()
	if len(rep.Figures) != 1 || rep.Figures[0].Ratios[sysQuicRaw] != 0.8 || rep.Figures[0].Ratios[sysTCP] != 0.2 {
		t.Fatalf("ratios: %+v; want quic-raw 0.8, tcp 0.2", rep.Figures)
	}
	md := rep.markdown()
	for _, want := range []string{"| **p2pd** | 80.0 |", "| quic-raw | 100 | 100 – 100 | 1 | 0.80× |"} {
		if !strings.Contains(md, want) {
			t.Fatalf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func listenTCP(t *testing.T, h func(net.Conn) error) *connServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := serveConns(ln, h)
	t.Cleanup(s.Close)
	return s
}
