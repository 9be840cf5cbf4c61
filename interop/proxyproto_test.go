package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pd/p2pd/internal/testnet"
)

// sessionRemoteOf is the address n sees its session with peer come from,
// from `p2pctl --json sessions`.
func sessionRemoteOf(t *testing.T, n *testNode, peer string) netip.AddrPort {
	t.Helper()
	var doc struct {
		Sessions []struct{ Peer, Remote string } `json:"sessions"`
	}
	out, err := n.ctl("--json", "sessions")
	if err != nil {
		t.Fatalf("p2pctl sessions: %v", err)
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Sessions {
		if s.Peer == peer {
			ap := netip.MustParseAddrPort(s.Remote)
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	t.Fatalf("%s has no session with %s: %s", n.name, peer, out)
	return netip.AddrPort{}
}

// echoVia sends data to the forward at addr, half-closes and returns
// what comes back.
func echoVia(t *testing.T, network, addr string, data []byte) []byte {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("connect to the forward %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if werr := <-werr; werr != nil {
		t.Fatalf("write to the forward: %v", werr)
	}
	if err != nil {
		t.Fatalf("read from the forward after %d bytes: %v", len(got), err)
	}
	return got
}

// TestProxyProtocolV2AndWhois runs two daemons: b offers "pp" (a Go backend
// that expects PROXY v2, proxy_protocol = "v2") and "plain" (one that does
// not); a reaches both through forwards. The pp backend must see a's peer
// ID and name in the TLVs and, as source, the address b sees a's session
// come from; `p2pctl whois` on b must name a for the plain backend's client.
func TestProxyProtocolV2AndWhois(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	ppBack := testnet.NewProxyBackend(t, "tcp", "127.0.0.1:0", true, 60*time.Second)
	plainBack := testnet.NewProxyBackend(t, "tcp", "127.0.0.1:0", false, 60*time.Second)
	b.writeConfig(a.peerTOML() + fmt.Sprintf(`
[[services]]
name = "pp"
target = %q
allow = ["a"]
proxy_protocol = "v2"

[[services]]
name = "plain"
target = %q
allow = ["a"]
`, ppBack.Addr(), plainBack.Addr()))
	ppFwd, plainFwd := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")), fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	a.writeConfig(b.peerTOML() + fmt.Sprintf(`
[[forwards]]
listen = %q
peer = "b"
service = "pp"

[[forwards]]
listen = %q
peer = "b"
service = "plain"
`, ppFwd, plainFwd))
	b.start()
	a.start()

	data := []byte(strings.Repeat("payload after the header; ", 4096))
	if got := echoVia(t, "tcp", ppFwd, data); sha(got) != sha(data) {
		t.Fatalf("through the pp forward: sent %d bytes, got %d that differ\n--- b's log:\n%s", len(data), len(got), b.log)
	}
	seen := ppBack.Next(t, 30*time.Second)
	if seen.Err != nil {
		t.Fatalf("the PROXY v2 backend: %v\n--- b's log:\n%s", seen.Err, b.log)
	}
	s := seen.Header
	src := sessionRemoteOf(t, b, "a")
	if want := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", a.port)); src != want {
		t.Errorf("b sees a's session from %v, want a's UDP socket %v", src, want)
	}
	if s.Family != 0x11 || s.Src != src || s.Dst.String() != ppBack.Addr() {
		t.Errorf("header: family %#x, %v -> %v; want 0x11, %v -> %s", s.Family, s.Src, s.Dst, src, ppBack.Addr())
	}
	if s.TLVs[0xE0] != a.id || s.TLVs[0xE1] != "a" {
		t.Errorf("TLVs: peer ID %q, name %q; want %q, %q", s.TLVs[0xE0], s.TLVs[0xE1], a.id, "a")
	}

	// whois: hold a connection through the plain forward open and ask b
	// who the plain backend's client is.
	c, err := net.Dial("tcp", plainFwd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatalf("echo through the plain forward: %v", err)
	}
	client := plainBack.Next(t, 30*time.Second).Remote.String()
	out, err := b.ctl("whois", client)
	if err != nil {
		t.Fatalf("p2pctl whois %s: %v\n%s", client, err, out)
	}
	if !strings.Contains(string(out), a.id) || !strings.Contains(string(out), " plain ") || !strings.HasPrefix(string(out), "ADDR") {
		t.Errorf("p2pctl whois %s printed\n%s\nwant a table naming a (%s) and service plain", client, out, a.id)
	}
	out, err = b.ctl("--json", "whois", client)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Connections []struct{ Addr, Peer, PeerID, Service, Target string } `json:"connections"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("p2pctl --json whois: %v\n%s", err, out)
	}
	if len(doc.Connections) != 1 {
		t.Fatalf("p2pctl --json whois %s: %s", client, out)
	}
	if got := doc.Connections[0]; got.Addr != client || got.Peer != "a" || got.Service != "plain" || got.Target != plainBack.Addr() {
		t.Errorf("p2pctl --json whois %s: %+v", client, got)
	}
	if !strings.Contains(string(out), `"peer_id": "`+a.id+`"`) {
		t.Errorf("p2pctl --json whois lacks the peer ID:\n%s", out)
	}

	// Once the connection ends, whois knows nothing about the address.
	c.Close()
	waitFor(t, "whois to forget the ended connection", 30*time.Second, func() bool {
		_, err := b.ctl("whois", client)
		return err != nil
	})
	cmd := exec.Command(bins.p2pctl, "--socket", b.socket(), "whois", client)
	msg, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || strings.TrimSpace(string(msg)) != "p2pctl: no overlay connection from "+client {
		t.Errorf("p2pctl whois of an ended connection: %v, %q; want exit 1 and %q", err, msg, "p2pctl: no overlay connection from "+client)
	}
	if out, err := exec.Command(bins.p2pctl, "--socket", b.socket(), "whois", "localhost").CombinedOutput(); err == nil ||
		err.(*exec.ExitError).ExitCode() != 2 {
		t.Errorf("p2pctl whois localhost: %v %s; want a usage error (exit 2)", err, out)
	}
}

// TestProxyProtocolV2Nginx puts an unmodified nginx behind proxy_protocol =
// "v2", on a TCP port and on a Unix socket: nginx must accept the header
// and report as $proxy_protocol_addr:$proxy_protocol_port the address b
// sees a's session come from. Skipped without nginx (apt install nginx-light).
func TestProxyProtocolV2Nginx(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Skip("nginx is not installed (apt install nginx-light)")
		}
		bin = "/usr/sbin/nginx"
	}
	dir, err := os.MkdirTemp("", "p2pd-nginx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port := freePort(t, "tcp")
	sock := filepath.Join(dir, "web.sock")
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  client_body_temp_path %[1]s;
  proxy_temp_path %[1]s;
  fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s;
  scgi_temp_path %[1]s;
  access_log off;
  server {
    listen 127.0.0.1:%[2]d proxy_protocol;
    listen unix:%[3]s proxy_protocol;
    location / { return 200 "peer $proxy_protocol_addr:$proxy_protocol_port\n"; }
  }
}
`, dir, port, sock)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ngx := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	var ngxOut bytes.Buffer
	ngx.Stdout, ngx.Stderr = &ngxOut, &ngxOut
	if err := ngx.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ngx.Process.Kill(); ngx.Wait() })
	waitFor(t, "nginx to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	a, b := newNode(t, "a"), newNode(t, "b")
	b.writeConfig(a.peerTOML() + fmt.Sprintf(`
[[services]]
name = "web"
target = "127.0.0.1:%d"
allow = ["a"]
proxy_protocol = "v2"

[[services]]
name = "webunix"
target = %q
allow = ["a"]
proxy_protocol = "v2"
`, port, "unix:"+sock))
	fwdTCP, fwdUnix := freePort(t, "tcp"), freePort(t, "tcp")
	a.writeConfig(b.peerTOML() + fmt.Sprintf(`
[[forwards]]
listen = "127.0.0.1:%d"
peer = "b"
service = "web"

[[forwards]]
listen = "127.0.0.1:%d"
peer = "b"
service = "webunix"
`, fwdTCP, fwdUnix))
	b.start()
	a.start()
	for _, fwd := range []int{fwdTCP, fwdUnix} {
		body, err := curl(t, fmt.Sprintf("http://127.0.0.1:%d/", fwd))
		if err != nil {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("GET through the forward %d: %v\n--- nginx:\n%s%s\n--- b's log:\n%s", fwd, err, logs, ngxOut.String(), b.log)
		}
		if want := fmt.Sprintf("peer %v\n", sessionRemoteOf(t, b, "a")); string(body) != want {
			t.Errorf("through the forward %d nginx answered %q, want %q", fwd, body, want)
		}
	}
}
