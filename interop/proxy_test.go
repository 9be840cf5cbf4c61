package interop

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pd/p2pd/identity"
	"github.com/p2pd/p2pd/internal/testnet"
)

// proxyPair is node a with SOCKS5 and HTTP proxies, and node b with services
// behind them: "files" (a Python http.server with a 32 MiB blob), "secret"
// (allows nobody), "closed" (a port nothing listens on), "echo".
type proxyPair struct {
	a, b         *testNode
	gone         string // a [[peers]] entry for a peer that never answers
	socks, httpp string // a's proxy addresses
	web          *httpBackend
	blob         []byte
}

func newProxyPair(t *testing.T, proxyExtra string) *proxyPair {
	t.Helper()
	p := &proxyPair{a: newNode(t, "a"), b: newNode(t, "b")}
	gone, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.gone = fmt.Sprintf("[[peers]]\nname = \"gone\"\nid = %q\naddresses = [\"127.0.0.1:%d\"]\n\n", gone.PeerID().String(), freePort(t, "udp"))
	www := t.TempDir()
	p.blob = make([]byte, 32<<20)
	rand.Read(p.blob)
	if err := os.WriteFile(filepath.Join(www, "blob"), p.blob, 0o644); err != nil {
		t.Fatal(err)
	}
	p.web = startHTTPBackend(t, www)
	echo := testnet.NewEcho(t)
	p.b.writeConfig(p.a.peerTOML() + fmt.Sprintf(`
[[services]]
name = "files"
target = "127.0.0.1:%d"
allow = ["a"]

[[services]]
name = "secret"
target = "127.0.0.1:%d"
allow = []

[[services]]
name = "closed"
target = "127.0.0.1:%d"
allow = ["*"]

[[services]]
name = "echo"
target = %q
allow = ["a"]
`, p.web.port, p.web.port, freePort(t, "tcp"), echo.Addr()))
	p.socks = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	p.httpp = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	p.a.writeConfig(p.proxyConfig(proxyExtra))
	p.b.start()
	p.a.start()
	return p
}

// proxyConfig is a's config: peer b, a peer "gone" that no one answers for,
// and the [proxy] table with extra lines.
func (p *proxyPair) proxyConfig(extra string) string {
	return p.b.peerTOML() + p.gone + fmt.Sprintf("[proxy]\nsocks5 = %q\nhttp = %q\n%s\n", p.socks, p.httpp, extra)
}

// curlProxy runs an unmodified curl with args (output to a file) and
// returns the body, curl's exit code and its stderr.
func curlProxy(t *testing.T, args ...string) ([]byte, int, string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (install it; .ci/run does)")
	}
	out := filepath.Join(t.TempDir(), "got")
	cmd := exec.Command("curl", append([]string{"-sS", "--max-time", "60", "-o", out}, args...)...)
	msg, err := cmd.CombinedOutput()
	got, _ := os.ReadFile(out)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return got, code, string(msg)
}

// waitSOCKS retries a download through the SOCKS5 proxy until the session
// to b is up.
func (p *proxyPair) waitSOCKS(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, code, msg := curlProxy(t, "--socks5-hostname", p.socks, "http://echo.b.p2p/")
		// The echo service answers an HTTP request with the request: curl
		// gets garbage (exit 1 or 8), but the SOCKS5 part worked.
		if code != 97 && code != 7 && code != 28 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("SOCKS5 never reached b: curl exit %d: %s\n--- a's log:\n%s", code, msg, p.a.log)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestProxyEndToEnd(t *testing.T) {
	p := newProxyPair(t, "")
	p.waitSOCKS(t)
	base36, err := identity.ParsePeerID(p.b.id)
	if err != nil {
		t.Fatal(err)
	}
	want := sha(p.blob)
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"curl --socks5-hostname", []string{"--socks5-hostname", p.socks, "http://files.b.p2p/blob"}},
		{"curl --socks5-hostname, peer by base36 ID in upper case", []string{"--socks5-hostname", p.socks,
			"http://files." + strings.ToUpper(base36.Base36()) + ".P2P:9/blob"}},
		{"curl -x (plain HTTP)", []string{"-x", "http://" + p.httpp, "http://files.b.p2p/blob"}},
		{"curl -p -x (CONNECT)", []string{"-p", "-x", "http://" + p.httpp, "http://files.b.p2p/blob"}},
		{"--proxy socks5h://, peer name in upper case", []string{"--proxy", "socks5h://" + p.socks, "http://files.B.p2p:8080/blob"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, code, msg := curlProxy(t, append([]string{"-f"}, tt.args...)...)
			if code != 0 || sha(got) != want {
				t.Fatalf("curl exit %d (%s), %d bytes with sha %s; want %d bytes with sha %s\n--- a's log:\n%s",
					code, msg, len(got), sha(got), len(p.blob), want, p.a.log)
			}
		})
	}

	before := p.web.requests(t)
	t.Run("SOCKS5 reply codes", func(t *testing.T) {
		for _, tt := range []struct {
			what string
			req  []byte
			rep  byte
		}{
			{"unknown peer", socks5Name("files.nobody.p2p"), 0x04},
			{"unknown service", socks5Name("nosuch.b.p2p"), 0x04},
			{"access denied", socks5Name("secret.b.p2p"), 0x02},
			{"target refused", socks5Name("closed.b.p2p"), 0x05},
			{"peer unreachable (its handshake times out)", socks5Name("files.gone.p2p"), 0x03},
			{"IPv4 destination", socks5Req(1, 1, []byte{127, 0, 0, 1}), 0x02},
			{"IPv6 destination", socks5Req(1, 4, net.IPv6loopback), 0x02},
			{"other name", socks5Name("example.com"), 0x02},
			{"no service label", socks5Name("b.p2p"), 0x01},
			{"BIND", socks5Req(2, 3, []byte("files.b.p2p")), 0x07},
			{"address type 9", []byte{5, 1, 0, 9, 0, 0}, 0x08},
		} {
			if rep, err := socks5Reply(p.socks, tt.req); err != nil || rep != tt.rep {
				t.Errorf("%s: reply %#x, %v; want %#x", tt.what, rep, err, tt.rep)
			}
		}
	})
	t.Run("curl sees SOCKS5 refusals", func(t *testing.T) {
		for _, host := range []string{"secret.b.p2p", "nosuch.b.p2p", "files.nobody.p2p", "example.com"} {
			if _, code, msg := curlProxy(t, "--socks5-hostname", p.socks, "http://"+host+"/blob"); code != 97 {
				t.Errorf("%s: curl exit %d (%s), want 97 (proxy handshake error)", host, code, msg)
			}
		}
	})
	t.Run("HTTP proxy statuses", func(t *testing.T) {
		for _, tt := range []struct {
			url, line string
			code      int
		}{
			{"http://secret.b.p2p/blob", "access denied", 403},
			{"http://nosuch.b.p2p/blob", "unknown service", 404},
			{"http://files.nobody.p2p/blob", "unknown peer", 404},
			{"http://closed.b.p2p/blob", "refused", 502},
			{"http://example.com/", "is not a <service>.<peer>.p2p name", 403},
		} {
			for _, connect := range []bool{false, true} {
				args := []string{"-w", "%{http_code}", "-x", "http://" + p.httpp, tt.url}
				if connect {
					args = []string{"-p", "-w", "%{http_connect}", "-x", "http://" + p.httpp, tt.url}
				}
				body, _, out := curlProxy(t, args...)
				// With -sS a failed CONNECT adds curl's error line before
				// the -w output.
				out = strings.TrimSpace(out)
				if code := out[max(0, len(out)-3):]; code != fmt.Sprint(tt.code) {
					t.Errorf("%s (CONNECT %v): status %s, want %d", tt.url, connect, out, tt.code)
				}
				if !connect && (!strings.Contains(string(body), tt.line) || strings.Count(string(body), "\n") != 1) {
					t.Errorf("%s: body %q, want one line naming %q", tt.url, body, tt.line)
				}
			}
		}
	})
	if after := p.web.requests(t); after != before {
		t.Fatalf("the backend saw %d requests for refused destinations", after-before)
	}
	t.Run("p2pctl proxies", func(t *testing.T) {
		out, err := p.a.ctl("--json", "proxies")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Proxies []struct {
				Kind, Listen string
				Total        uint64
				Errors       map[string]uint64
			}
		}
		if err := json.Unmarshal(out, &doc); err != nil || len(doc.Proxies) != 2 {
			t.Fatalf("%s: %v", out, err)
		}
		s, h := doc.Proxies[0], doc.Proxies[1]
		if s.Kind != "socks5" || s.Listen != p.socks || h.Kind != "http" || h.Listen != p.httpp {
			t.Fatalf("listeners %+v", doc.Proxies)
		}
		if s.Errors["access_denied"] < 2 || s.Errors["not_p2p"] < 4 || s.Errors["peer_unreachable"]+s.Errors["timeout"] < 1 ||
			h.Errors["unknown_service"] != 2 || h.Errors["target_refused"] != 2 {
			t.Fatalf("errors by kind: socks5 %v, http %v", s.Errors, h.Errors)
		}
		table, err := p.a.ctl("proxies")
		if err != nil || !strings.Contains(string(table), "access_denied=") {
			t.Fatalf("table: %s %v", table, err)
		}
	})
	t.Run("overlay errors logged at INFO with peer, service and reason", func(t *testing.T) {
		if !strings.Contains(p.a.log.String(), `level=INFO msg="socks5 proxy: connection failed" peer=b service=secret reason=access_denied`) {
			t.Fatalf("no INFO line for the denied SOCKS5 connection in a's log:\n%s", p.a.log)
		}
	})
}

func TestProxyAuth(t *testing.T) {
	p := newProxyPair(t, "username = \"alice\"\npassword = \"s3cret\"\n")
	url := "http://files.b.p2p/blob"
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, code, msg := curlProxy(t, "-f", "--socks5-hostname", p.socks, "--proxy-user", "alice:s3cret", url)
		if code == 0 && sha(got) == sha(p.blob) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SOCKS5 with the right credentials: curl exit %d: %s\n%s", code, msg, p.a.log)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, creds := range []string{"alice:wrong", "bob:s3cret", ""} {
		args := []string{"--socks5-hostname", p.socks, url}
		if creds != "" {
			args = append(args, "--proxy-user", creds)
		}
		if _, code, msg := curlProxy(t, args...); code != 97 {
			t.Errorf("SOCKS5 with credentials %q: curl exit %d (%s), want 97", creds, code, msg)
		}
	}
	if got, code, _ := curlProxy(t, "-f", "-x", "http://"+p.httpp, "--proxy-user", "alice:s3cret", url); code != 0 || sha(got) != sha(p.blob) {
		t.Errorf("HTTP proxy with the right credentials: curl exit %d", code)
	}
	if _, _, out := curlProxy(t, "-w", "%{http_code}", "-x", "http://"+p.httpp, url); out != "407" {
		t.Errorf("HTTP proxy without credentials: %q, want 407", out)
	}
	// A reload that drops the credentials takes effect for new connections.
	p.a.writeConfig(p.proxyConfig(""))
	if out, err := p.a.ctl("reload"); err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	if got, code, msg := curlProxy(t, "-f", "--socks5-hostname", p.socks, url); code != 0 || sha(got) != sha(p.blob) {
		t.Fatalf("after a reload without credentials: curl exit %d: %s", code, msg)
	}
}

// TestProxySlowloris holds 2,000 idle connections on the SOCKS5 port (some
// silent, some with half a greeting, some stuck before their request) while
// curl goes through it, and checks that the proxy closes them once the
// 10 s handshake deadline has passed.
func TestProxySlowloris(t *testing.T) {
	p := newProxyPair(t, "")
	p.waitSOCKS(t)
	const idle = 2000
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for i := range idle {
		c, err := net.Dial("tcp", p.socks)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		c.Write([][]byte{nil, {5}, {5, 1, 0}}[i%3])
		conns = append(conns, c)
	}
	got, code, msg := curlProxy(t, "-f", "--socks5-hostname", p.socks, "http://files.b.p2p/blob")
	if code != 0 || sha(got) != sha(p.blob) {
		t.Fatalf("curl beside %d idle connections: exit %d (%s), %d bytes", idle, code, msg, len(got))
	}
	if took := time.Since(start); took > 9*time.Second {
		t.Logf("the download ended %v after the first idle connection, near the deadline: the closing check below proves less", took)
	}
	var wg sync.WaitGroup
	errs := make(chan error, idle)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := io.Copy(io.Discard, c) // the 05 00 method answer, then EOF or a reset
			if err != nil && !strings.Contains(err.Error(), "reset") {
				errs <- fmt.Errorf("idle connection %d: %v (want the proxy to close it)", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if closed := time.Since(start); closed < 10*time.Second {
		t.Fatalf("idle connections closed after %v, before the 10 s deadline", closed)
	}
	out, err := p.a.ctl("--json", "proxies")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Proxies []struct{ Errors map[string]uint64 }
	}
	if json.Unmarshal(out, &doc); len(doc.Proxies) == 0 || doc.Proxies[0].Errors["handshake"] < idle {
		t.Fatalf("proxies: %s; want at least %d handshake errors", out, idle)
	}
}

// socks5Req is a SOCKS5 request for an address of type atyp.
func socks5Req(cmd, atyp byte, addr []byte) []byte {
	b := []byte{5, cmd, 0, atyp}
	if atyp == 3 {
		b = append(b, byte(len(addr)))
	}
	return binary.BigEndian.AppendUint16(append(b, addr...), 80)
}

func socks5Name(name string) []byte { return socks5Req(1, 3, []byte(name)) }

// socks5Reply runs a SOCKS5 handshake with req against proxy and returns
// the reply code: the codes curl does not show.
func socks5Reply(proxy string, req []byte) (byte, error) {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return 0, err
	}
	var b [10]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[1] != 0 {
		return 0, fmt.Errorf("greeting answer % x, %v", b[:2], err)
	}
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	return b[1], nil
}
