package interop

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
	"github.com/p2pd/p2pd/metrics/metricstest"
	dto "github.com/prometheus/client_model/go"
)

// TestMetricsEndpoint runs b (services echo and secret, [metrics] on) and
// a (forwards to echo, secret and a service b does not have, an HTTP proxy,
// [metrics] on) and c, whom b does not trust. It makes one echoed
// connection, one refused by the allow list, one to an unknown service, one
// bad proxy request and c's refused handshake, then scrapes both daemons'
// /metrics over HTTP and checks that the series carry exactly those.
func TestMetricsEndpoint(t *testing.T) {
	echo, uecho := testnet.NewEcho(t), testnet.NewUDPEcho(t)
	a, b, c := newNode(t, "a"), newNode(t, "b"), newNode(t, "c")
	ma, mb := freePort(t, "tcp"), freePort(t, "tcp")
	fecho, fsecret, fnone, fc, httpProxy := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")
	fdns := freePort(t, "udp")
	b.writeConfig(a.peerTOML() + fmt.Sprintf(`
[[services]]
name = "echo"
target = %q
allow = ["a"]

[[services]]
name = "secret"
target = %q
allow = []

[[services]]
name = "dns"
target = %q
protocol = "udp"
allow = ["a"]

[metrics]
listen = "127.0.0.1:%d"
`, echo.Addr(), echo.Addr(), uecho, mb))
	forward := func(port int, service string) string {
		return fmt.Sprintf("[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"b\"\nservice = %q\n\n", port, service)
	}
	a.writeConfig(b.peerTOML() + forward(fecho, "echo") + forward(fsecret, "secret") + forward(fnone, "no-such-service") +
		fmt.Sprintf("[[forwards]]\nlisten = \"127.0.0.1:%d\"\npeer = \"b\"\nservice = \"dns\"\nprotocol = \"udp\"\n\n", fdns) +
		fmt.Sprintf("[proxy]\nhttp = \"127.0.0.1:%d\"\n\n[metrics]\nlisten = \"%d\"\n", httpProxy, ma))
	c.writeConfig(b.peerTOML() + forward(fc, "echo"))
	b.start()
	a.start()
	c.start()

	urlA, urlB := fmt.Sprintf("http://127.0.0.1:%d/metrics", ma), fmt.Sprintf("http://127.0.0.1:%d/metrics", mb)

	data := make([]byte, 100_000)
	rand.Read(data)
	if err := echoThrough(fmt.Sprintf("127.0.0.1:%d", fecho), data); err != nil {
		t.Fatalf("echo through a's forward: %v\n--- a:\n%s\n--- b:\n%s", err, a.log, b.log)
	}
	for _, port := range []int{fsecret, fnone} {
		if err := refusedThrough(fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			t.Fatalf("forward on port %d: %v\n--- a:\n%s", port, err, a.log)
		}
	}
	if err := refusedThrough(fmt.Sprintf("127.0.0.1:%d", fc)); err != nil {
		t.Fatalf("untrusted c's forward: %v", err)
	}
	badProxyRequest(t, httpProxy)
	const datagrams = 3
	udpEchoThrough(t, fmt.Sprintf("127.0.0.1:%d", fdns), datagrams)

	// b counts a stream's bytes when its splice ends, which may be a moment
	// after the client saw the echo's end.
	var fb map[string]*dto.MetricFamily
	waitFor(t, "b to count the echoed stream's bytes", 10*time.Second, func() bool {
		fb = metricstest.Scrape(t, urlB)
		_, ok := metricstest.Value(fb, "p2pd_bytes_total", "direction=sent", "peer=a", "service=echo")
		return ok
	})
	expect(t, "b", fb, 1, "p2pd_streams_total", "result=ok", "service=echo")
	expect(t, "b", fb, 1, "p2pd_streams_total", "result=access_denied", "service=secret")
	expect(t, "b", fb, 1, "p2pd_streams_total", "result=unknown_service", "service=other")
	expect(t, "b", fb, 1, "p2pd_streams_total", "result=ok", "service=dns")
	if n := len(fb["p2pd_streams_total"].GetMetric()); n != 4 {
		t.Errorf("b: p2pd_streams_total has %d series, want the 4 the test caused", n)
	}
	expect(t, "b", fb, datagrams, "p2pd_udp_datagrams_total", "direction=received", "peer=a", "service=dns")
	expect(t, "b", fb, datagrams, "p2pd_udp_datagrams_total", "direction=sent", "peer=a", "service=dns")
	if f := fb["p2pd_udp_datagrams_dropped_total"]; f != nil {
		t.Errorf("b: p2pd_udp_datagrams_dropped_total %v, want no drops", f.GetMetric())
	}
	expect(t, "b", fb, float64(len(data)), "p2pd_bytes_total", "direction=received", "peer=a", "service=echo")
	expect(t, "b", fb, float64(len(data)), "p2pd_bytes_total", "direction=sent", "peer=a", "service=echo")
	expect(t, "b", fb, 1, "p2pd_sessions", "carrier=quic", "path=direct", "peer=a")
	if n := len(fb["p2pd_sessions"].GetMetric()); n != 1 {
		t.Errorf("b: p2pd_sessions has %d series, want a's alone (c is not trusted)", n)
	}
	if rtt, ok := metricstest.Value(fb, "p2pd_peer_rtt_seconds", "peer=a"); !ok || rtt <= 0 || rtt > 1 {
		t.Errorf("b: p2pd_peer_rtt_seconds{peer=a} = %v (present %v), want a loopback RTT above 0", rtt, ok)
	}
	// The session that carried the echo may have been replaced since (both
	// sides dialed; one session survives), so its bytes only need to exist.
	if got, _ := metricstest.Value(fb, "p2pd_session_bytes_total", "direction=received", "peer=a"); got <= 0 {
		t.Errorf("b: p2pd_session_bytes_total{received,peer=a} = %v, want the live session's bytes", got)
	}
	if _, ok := metricstest.Value(fb, "p2pd_peer_packets_lost_total", "peer=a"); !ok {
		t.Error("b: p2pd_peer_packets_lost_total{peer=a} is absent")
	}
	// a's session to b took one handshake at least (a simultaneous dial may
	// take two); c's attempts were refused as untrusted.
	if n, _ := metricstest.Value(fb, "p2pd_handshakes_total", "result=ok"); n < 1 {
		t.Errorf("b: p2pd_handshakes_total{result=ok} = %v, want at least 1", n)
	}
	if n, _ := metricstest.Value(fb, "p2pd_handshakes_total", "result=untrusted"); n < 1 {
		t.Errorf("b: p2pd_handshakes_total{result=untrusted} = %v, want c's refused attempts (at least 1)\n%s", n, b.log)
	}
	if h := fb["p2pd_handshake_duration_seconds"]; h == nil || h.GetMetric()[0].GetHistogram().GetSampleCount() < 1 {
		t.Errorf("b: p2pd_handshake_duration_seconds has no sample: %v", h)
	}
	checkBuildInfo(t, fb)
	noPeerIDs(t, fb, a.id, b.id, c.id, fmt.Sprint(a.port), fmt.Sprint(c.port))

	fa := metricstest.Scrape(t, urlA)
	listen := func(port int) string { return fmt.Sprintf("listen=127.0.0.1:%d", port) }
	expect(t, "a", fa, 1, "p2pd_forward_connections_total", listen(fecho), "protocol=tcp")
	expect(t, "a", fa, 0, "p2pd_forward_connections", listen(fecho), "protocol=tcp")
	expect(t, "a", fa, 0, "p2pd_forward_connections_refused_total", listen(fecho), "protocol=tcp")
	expect(t, "a", fa, 1, "p2pd_forward_errors_total", "kind=access_denied", listen(fsecret), "protocol=tcp")
	expect(t, "a", fa, 1, "p2pd_forward_errors_total", "kind=unknown_service", listen(fnone), "protocol=tcp")
	expect(t, "a", fa, 1, "p2pd_proxy_errors_total", "kind=not_p2p", "listener=http")
	expect(t, "a", fa, 1, "p2pd_sessions", "carrier=quic", "path=direct", "peer=b")
	if n, _ := metricstest.Value(fa, "p2pd_handshakes_total", "result=ok"); n < 1 {
		t.Errorf("a: p2pd_handshakes_total{result=ok} = %v, want at least 1", n)
	}
	checkBuildInfo(t, fa)

	if code := httpStatus(t, fmt.Sprintf("http://127.0.0.1:%d/", mb)); code != http.StatusNotFound {
		t.Errorf("GET / on the metrics endpoint: %d, want 404", code)
	}
}

// refusedThrough connects to a forward whose stream the peer refuses: the
// connection must end with no byte.
func refusedThrough(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if errors.Is(err, syscall.ECONNRESET) {
		// The forward accepted and reset the connection (the refusal)
		// before the dialer looked: on a loaded machine that happens.
		return nil
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	conn.Write([]byte("hello"))
	got, err := io.ReadAll(conn)
	var ne net.Error
	switch {
	case len(got) > 0:
		return fmt.Errorf("got %q through a forward that should be refused", got)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("the connection neither ended nor answered in 30 s")
	}
	return nil
}

// badProxyRequest asks a's HTTP proxy for a name outside .p2p, which it
// refuses without touching the network.
func badProxyRequest(t *testing.T, port int) {
	t.Helper()
	proxyURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}}
	resp, err := client.Get("http://example.invalid/")
	if err != nil {
		t.Fatalf("request through the HTTP proxy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("the HTTP proxy answered %d for a name outside .p2p, want a refusal", resp.StatusCode)
	}
}

func httpStatus(t *testing.T, u string) int {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func expect(t *testing.T, node string, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metricstest.Value(fams, name, labels...)
	switch {
	case !ok:
		t.Errorf("%s: %s{%s} is absent, want %v; the family has %v", node, name, strings.Join(labels, ","), want, labelSets(fams[name]))
	case math.Abs(got-want) > 1e-9:
		t.Errorf("%s: %s{%s} = %v, want %v", node, name, strings.Join(labels, ","), got, want)
	}
}

func labelSets(f *dto.MetricFamily) []string {
	var out []string
	for _, m := range f.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		out = append(out, "{"+strings.Join(ls, ",")+"}")
	}
	sort.Strings(out)
	return out
}

func checkBuildInfo(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	ms := fams["p2pd_build_info"].GetMetric()
	if len(ms) != 1 || ms[0].GetGauge().GetValue() != 1 {
		t.Fatalf("p2pd_build_info: %v, want one sample of 1", ms)
	}
	labels := map[string]string{}
	for _, l := range ms[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if !strings.HasPrefix(labels["version"], "0.") || labels["commit"] == "" || labels["goversion"] != runtime.Version() {
		t.Errorf("p2pd_build_info labels %v, want a version, a commit and goversion %s", labels, runtime.Version())
	}
}

// noPeerIDs checks that no label value carries a peer ID or a port of a
// peer's address: labels are configured names only.
func noPeerIDs(t *testing.T, fams map[string]*dto.MetricFamily, forbidden ...string) {
	t.Helper()
	for name, f := range fams {
		if !strings.HasPrefix(name, "p2pd_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, s := range forbidden {
					if strings.Contains(l.GetValue(), s) {
						t.Errorf("%s has the label %s=%q, which carries %q", name, l.GetName(), l.GetValue(), s)
					}
				}
			}
		}
	}
}

// TestMetricsDependency keeps client_golang in package metrics (DESIGN.md
// §8), and metrics free of the daemon's packages: it reads them through
// its Source, which cmd/p2pd fills.
func TestMetricsDependency(t *testing.T) {
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "github.com/prometheus/client_golang") && topDir(r) != "metrics" {
				t.Errorf("%s imports %s; only metrics may", r, imp)
			}
			if topDir(r) == "metrics" && strings.HasPrefix(imp, module+"/") {
				t.Errorf("metrics imports %s; it takes its counts through metrics.Source", rel(imp))
			}
		}
	}
}

// udpEchoThrough sends n datagrams to addr, a udp forward to an echo
// service, one at a time, and checks each answer.
func udpEchoThrough(t *testing.T, addr string, n int) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for i := range n {
		msg := fmt.Appendf(nil, "datagram %d", i)
		// The first datagram opens the flow and waits for it in the
		// forward's queue; none is sent twice, so b's counts are exact.
		c.Write(msg)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("udp forward %s: no echo of %q: %v", addr, msg, err)
		}
		got := buf[:k]
		if !bytes.Equal(got, msg) {
			t.Fatalf("udp forward %s: no echo of %q", addr, msg)
		}
	}
}
