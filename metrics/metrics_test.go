package metrics_test

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/metrics"
	"github.com/p2pd/p2pd/metrics/metricstest"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSource is a Source whose snapshot the test sets.
type fakeSource struct {
	mu   sync.Mutex
	snap metrics.Snapshot
}

func (f *fakeSource) Snapshot() metrics.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeSource) set(s metrics.Snapshot) {
	f.mu.Lock()
	f.snap = s
	f.mu.Unlock()
}

// serve runs m on a loopback port until the test ends and returns the
// scrape URL.
func serve(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v after its context ended, want nil", err)
		}
	})
	return "http://" + ln.Addr().String() + metrics.Path
}

// get fetches url with a client that keeps no connection.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func wantValue(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metricstest.Value(fams, name, labels...)
	if !ok {
		t.Errorf("%s{%s}: absent, want %v", name, strings.Join(labels, ","), want)
		return
	}
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s{%s} = %v, want %v", name, strings.Join(labels, ","), got, want)
	}
}

func TestScrapeCarriesTheSource(t *testing.T) {
	src := &fakeSource{}
	src.set(metrics.Snapshot{
		Sessions: []metrics.Session{
			{Peer: "db", Carrier: "quic", Path: "direct", Stats: true, RTT: 1500 * time.Microsecond, PacketsLost: 3, BytesSent: 100, BytesReceived: 250},
			{Peer: "web", Carrier: "relay", Path: "relayed"},
		},
		Streams: []metrics.StreamCount{
			{Service: "echo", Result: "ok", Count: 2},
			{Service: "echo", Result: "access_denied", Count: 1},
			{Service: "other", Result: "unknown_service", Count: 4},
			{Service: "echo", Result: "ok", Count: 5}, // equal labels add up
		},
		Bytes:    []metrics.ByteCount{{Peer: "db", Service: "echo", Received: 11, Sent: 22}},
		Forwards: []metrics.Forward{{Listen: "127.0.0.1:15432", Protocol: "tcp", Active: 2, Total: 9, Refused: 1, Errors: map[string]uint64{"peer_unreachable": 3}}},
		Proxies:  []metrics.Proxy{{Listener: "socks5", Active: 1, Total: 7, Refused: 2, Errors: map[string]uint64{"bad_name": 5}}},
		Datagrams: []metrics.DatagramCount{
			{Peer: "db", Service: "dns", Received: 40, Sent: 38, Dropped: map[string]uint64{"queue_full": 2}},
			{Peer: "db", Service: "dns", Received: 1, Sent: 1}, // equal labels add up
		},
	})
	m := metrics.New(metrics.Build{Version: "0.1.0", Commit: "abc123", GoVersion: "go1.26.8"}, nil)
	m.SetSource(src)
	m.ObserveHandshake("ok", 3*time.Millisecond)
	m.ObserveHandshake("ok", 5*time.Millisecond)
	m.ObserveHandshake("untrusted", 0)
	m.ObserveHandshake("no such result", 0)
	url := serve(t, m)

	fams := metricstest.Scrape(t, url)
	wantValue(t, fams, 1, "p2pd_build_info", "commit=abc123", "goversion=go1.26.8", "version=0.1.0")
	wantValue(t, fams, 1, "p2pd_sessions", "carrier=quic", "path=direct", "peer=db")
	wantValue(t, fams, 1, "p2pd_sessions", "carrier=relay", "path=relayed", "peer=web")
	wantValue(t, fams, 0.0015, "p2pd_peer_rtt_seconds", "peer=db")
	if _, ok := metricstest.Value(fams, "p2pd_peer_rtt_seconds", "peer=web"); ok {
		t.Error("a relayed path without stats has an RTT series")
	}
	wantValue(t, fams, 3, "p2pd_peer_packets_lost_total", "peer=db")
	wantValue(t, fams, 250, "p2pd_session_bytes_total", "direction=received", "peer=db")
	wantValue(t, fams, 100, "p2pd_session_bytes_total", "direction=sent", "peer=db")
	wantValue(t, fams, 7, "p2pd_streams_total", "result=ok", "service=echo")
	wantValue(t, fams, 1, "p2pd_streams_total", "result=access_denied", "service=echo")
	wantValue(t, fams, 4, "p2pd_streams_total", "result=unknown_service", "service=other")
	wantValue(t, fams, 11, "p2pd_bytes_total", "direction=received", "peer=db", "service=echo")
	wantValue(t, fams, 22, "p2pd_bytes_total", "direction=sent", "peer=db", "service=echo")
	wantValue(t, fams, 2, "p2pd_forward_connections", "listen=127.0.0.1:15432", "protocol=tcp")
	wantValue(t, fams, 9, "p2pd_forward_connections_total", "listen=127.0.0.1:15432", "protocol=tcp")
	wantValue(t, fams, 1, "p2pd_forward_connections_refused_total", "listen=127.0.0.1:15432", "protocol=tcp")
	wantValue(t, fams, 3, "p2pd_forward_errors_total", "kind=peer_unreachable", "listen=127.0.0.1:15432", "protocol=tcp")
	wantValue(t, fams, 1, "p2pd_proxy_connections", "listener=socks5")
	wantValue(t, fams, 7, "p2pd_proxy_connections_total", "listener=socks5")
	wantValue(t, fams, 2, "p2pd_proxy_connections_refused_total", "listener=socks5")
	wantValue(t, fams, 5, "p2pd_proxy_errors_total", "kind=bad_name", "listener=socks5")
	wantValue(t, fams, 41, "p2pd_udp_datagrams_total", "direction=received", "peer=db", "service=dns")
	wantValue(t, fams, 39, "p2pd_udp_datagrams_total", "direction=sent", "peer=db", "service=dns")
	wantValue(t, fams, 2, "p2pd_udp_datagrams_dropped_total", "peer=db", "reason=queue_full", "service=dns")
	wantValue(t, fams, 2, "p2pd_handshakes_total", "result=ok")
	wantValue(t, fams, 1, "p2pd_handshakes_total", "result=untrusted")
	wantValue(t, fams, 1, "p2pd_handshakes_total", "result=bad_message")
	wantValue(t, fams, 0, "p2pd_handshakes_total", "result=timeout")
	wantValue(t, fams, 0, "p2pd_handshakes_total", "result=overloaded")

	h := fams["p2pd_handshake_duration_seconds"]
	if h == nil || len(h.GetMetric()) != 1 || h.GetMetric()[0].GetHistogram() == nil {
		t.Fatalf("p2pd_handshake_duration_seconds: %v", h)
	}
	hist := h.GetMetric()[0].GetHistogram()
	if hist.GetSampleCount() != 2 || math.Abs(hist.GetSampleSum()-0.008) > 1e-9 {
		t.Errorf("handshake histogram: count %d sum %v, want the two ok handshakes: 2, 0.008", hist.GetSampleCount(), hist.GetSampleSum())
	}
	for _, b := range hist.GetBucket() {
		want := uint64(0)
		switch {
		case b.GetUpperBound() >= 0.005:
			want = 2
		case b.GetUpperBound() >= 0.003:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("handshake bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if fams["process_open_fds"] == nil || fams["go_goroutines"] == nil {
		t.Error("the process and Go runtime series are missing")
	}

	// A session that ends leaves the gauge; a scrape reads the source anew.
	src.set(metrics.Snapshot{})
	fams = metricstest.Scrape(t, url)
	if _, ok := metricstest.Value(fams, "p2pd_sessions", "carrier=quic", "path=direct", "peer=db"); ok {
		t.Error("p2pd_sessions still has db after its session ended")
	}
}

func TestBadLabelLeavesTheRest(t *testing.T) {
	src := &fakeSource{}
	src.set(metrics.Snapshot{Streams: []metrics.StreamCount{
		{Service: "bad\xff", Result: "ok", Count: 1},
		{Service: "echo", Result: "ok", Count: 1},
	}})
	m := metrics.New(metrics.Build{}, nil)
	m.SetSource(src)
	fams := metricstest.Scrape(t, serve(t, m))
	wantValue(t, fams, 1, "p2pd_streams_total", "result=ok", "service=echo")
}

func TestOnlyMetricsIsServed(t *testing.T) {
	m := metrics.New(metrics.Build{}, nil)
	url := serve(t, m)
	base := strings.TrimSuffix(url, metrics.Path)
	for _, path := range []string{"/", "/debug/pprof/", "/metrics/x"} {
		if code, _ := get(t, base+path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post(url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %d, want 405", metrics.Path, resp.StatusCode)
	}
}

func TestServeEndsWithItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Build{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, ln) }()
	// An idle client connection must not hold the shutdown.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return 5 s after its context ended")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after Serve returned")
	}
}
