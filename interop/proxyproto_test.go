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
	"sync"
	"testing"
	"time"
)

// backendConn is what a Go backend saw on one connection: the client
// address, and the PROXY v2 header when it expects one.
type backendConn struct {
	remote   netip.AddrPort
	fam      byte
	src, dst netip.AddrPort
	tlvs     map[byte]string
	err      error
}

// goBackend accepts TCP connections on loopback, reads a PROXY v2 header
// first if pp, reports each connection and echoes the rest until EOF.
type goBackend struct {
	ln   net.Listener
	seen chan backendConn
	wg   sync.WaitGroup
}

func startGoBackend(t *testing.T, pp bool) *goBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &goBackend{ln: ln, seen: make(chan backendConn, 16)}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				s := backendConn{tlvs: map[byte]string{}}
				if pp {
					s = readProxyV2(c)
				}
				s.remote = netip.MustParseAddrPort(c.RemoteAddr().String())
				b.seen <- s
				if s.err != nil {
					return
				}
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *goBackend) addr() string { return b.ln.Addr().String() }

func (b *goBackend) next(t *testing.T) backendConn {
	t.Helper()
	select {
	case s := <-b.seen:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("the backend got no connection in 30 s")
		return backendConn{}
	}
}

// readProxyV2 reads a PROXY protocol v2 header the way a receiver written
// from haproxy's proxy-protocol.txt does.
func readProxyV2(r io.Reader) backendConn {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return backendConn{err: err}
	}
	if !bytes.Equal(fixed[:12], []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}) || fixed[12] != 0x21 {
		return backendConn{err: fmt.Errorf("no PROXY v2 header: %q", fixed[:])}
	}
	rest := make([]byte, int(fixed[14])<<8|int(fixed[15]))
	if _, err := io.ReadFull(r, rest); err != nil {
		return backendConn{err: err}
	}
	s := backendConn{fam: fixed[13], tlvs: map[byte]string{}}
	port := func(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
	switch {
	case s.fam == 0x11 && len(rest) >= 12:
		s.src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[:4])), port(rest[8:]))
		s.dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[4:8])), port(rest[10:]))
		rest = rest[12:]
	case s.fam == 0x21 && len(rest) >= 36:
		s.src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(rest[:16])), port(rest[32:]))
		s.dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(rest[16:32])), port(rest[34:]))
		rest = rest[36:]
	case s.fam != 0x00:
		return backendConn{err: fmt.Errorf("family %#x with %d bytes", s.fam, len(rest))}
	}
	for len(rest) >= 3 {
		l := int(rest[1])<<8 | int(rest[2])
		if len(rest) < 3+l {
			return backendConn{err: errors.New("truncated TLV")}
		}
		s.tlvs[rest[0]] = string(rest[3 : 3+l])
		rest = rest[3+l:]
	}
	if len(rest) != 0 {
		return backendConn{err: errors.New("trailing bytes in the header")}
	}
	return s
}

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
	ppBack, plainBack := startGoBackend(t, true), startGoBackend(t, false)
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
`, ppBack.addr(), plainBack.addr()))
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
	s := ppBack.next(t)
	if s.err != nil {
		t.Fatalf("the PROXY v2 backend: %v\n--- b's log:\n%s", s.err, b.log)
	}
	src := sessionRemoteOf(t, b, "a")
	if want := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", a.port)); src != want {
		t.Errorf("b sees a's session from %v, want a's UDP socket %v", src, want)
	}
	if s.fam != 0x11 || s.src != src || s.dst.String() != ppBack.addr() {
		t.Errorf("header: family %#x, %v -> %v; want 0x11, %v -> %s", s.fam, s.src, s.dst, src, ppBack.addr())
	}
	if s.tlvs[0xE0] != a.id || s.tlvs[0xE1] != "a" {
		t.Errorf("TLVs: peer ID %q, name %q; want %q, %q", s.tlvs[0xE0], s.tlvs[0xE1], a.id, "a")
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
	client := plainBack.next(t).remote.String()
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
	if got := doc.Connections[0]; got.Addr != client || got.Peer != "a" || got.Service != "plain" || got.Target != plainBack.addr() {
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
