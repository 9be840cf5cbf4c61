package interop

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
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

// udpExchange sends d to to from c and waits for one answer, retrying the
// send while the first flow is set up.
func udpExchange(t *testing.T, c *net.UDPConn, to netip.AddrPort, d []byte, tries int) []byte {
	t.Helper()
	buf := make([]byte, 65535)
	for range tries {
		c.WriteToUDPAddrPort(d, to)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err == nil {
			return buf[:n]
		}
	}
	t.Fatalf("no answer to a %d-byte datagram", len(d))
	return nil
}

// TestUDPEndToEnd: real daemons carry UDP both through a udp forward and
// through SOCKS5 UDP ASSOCIATE: 1,000 datagrams of varied sizes and a
// 3,000-byte one echoed byte-exact; p2pctl flows shows the flows with
// their counters on both nodes; a flow idles out and comes back. With
// dnsmasq installed, dig resolves through the forward, including an answer
// larger than one QUIC datagram.
func TestUDPEndToEnd(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	echoPort := testnet.NewUDPEcho(t).Port
	dnsPort, dnsLog := 0, new(bytes.Buffer)
	if _, err := exec.LookPath("dnsmasq"); err == nil {
		dnsPort = startDNSMasq(t, dnsLog)
	}
	services := fmt.Sprintf(`
[[services]]
name = "uecho"
target = "127.0.0.1:%d"
protocol = "udp"
allow = ["a"]
idle_timeout = "2s"
`, echoPort)
	if dnsPort != 0 {
		services += fmt.Sprintf("\n[[services]]\nname = \"dns\"\ntarget = \"127.0.0.1:%d\"\nprotocol = \"udp\"\nallow = [\"a\"]\n", dnsPort)
	}
	b.writeConfig(a.peerTOML() + services)
	fwdPort, dnsFwd, socks := freePort(t, "udp"), freePort(t, "udp"), freePort(t, "tcp")
	forwards := fmt.Sprintf(`
[proxy]
socks5 = "127.0.0.1:%d"

[[forwards]]
listen = "127.0.0.1:%d"
protocol = "udp"
peer = "b"
service = "uecho"
`, socks, fwdPort)
	if dnsPort != 0 {
		forwards += fmt.Sprintf("\n[[forwards]]\nlisten = \"127.0.0.1:%d\"\nprotocol = \"udp\"\npeer = \"b\"\nservice = \"dns\"\n", dnsFwd)
	}
	a.writeConfig(b.peerTOML() + forwards)
	b.start()
	a.start()

	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(fwdPort))
	udpExchange(t, client, to, []byte("hello"), 30)
	for i := range 1000 {
		d := make([]byte, 16+i%1100)
		rand.Read(d)
		if got := udpExchange(t, client, to, d, 3); !bytes.Equal(got, d) {
			t.Fatalf("forward: datagram %d: %d bytes back, not the %d sent", i, len(got), len(d))
		}
	}
	big := make([]byte, 3000)
	rand.Read(big)
	if got := udpExchange(t, client, to, big, 3); !bytes.Equal(got, big) {
		t.Fatalf("forward: the 3,000-byte datagram came back as %d bytes", len(got))
	}

	// p2pctl flows on both nodes.
	out, err := a.ctl("--json", "flows")
	if err != nil {
		t.Fatalf("p2pctl flows: %v\n%s", err, out)
	}
	var flows struct {
		Flows []struct {
			Direction, Peer, Service, Carrier string
			Sent, Received                    uint64
		}
	}
	if err := json.Unmarshal(out, &flows); err != nil || len(flows.Flows) != 1 {
		t.Fatalf("a's flows: %s (%v)", out, err)
	}
	if f := flows.Flows[0]; f.Direction != "out" || f.Peer != "b" || f.Service != "uecho" || f.Sent != 1002 || f.Received != 1002 {
		t.Fatalf("a's flow: %+v; want out to b/uecho with 1,002 datagrams each way", f)
	}
	out, _ = b.ctl("--json", "flows")
	flows.Flows = nil
	if err := json.Unmarshal(out, &flows); err != nil || len(flows.Flows) != 1 || flows.Flows[0].Direction != "in" ||
		flows.Flows[0].Carrier != "datagram" || flows.Flows[0].Received != 1002 {
		t.Fatalf("b's flows: %s (%v)", out, err)
	}
	table, _ := a.ctl("flows")
	if !strings.Contains(string(table), "uecho") || !strings.Contains(string(table), "1002") {
		t.Fatalf("p2pctl flows:\n%s", table)
	}

	// The flow idles out on b after 2 s, and the next datagram makes a new one.
	waitFor(t, "the idle flow to end on b", 15*time.Second, func() bool {
		out, _ := b.ctl("--json", "flows")
		return strings.Contains(string(out), `"flows":[]`) || strings.Contains(string(out), `"flows": []`)
	})
	if got := udpExchange(t, client, to, []byte("back again"), 10); string(got) != "back again" {
		t.Fatalf("after the idle end: %q", got)
	}

	// SOCKS5 UDP ASSOCIATE.
	ctl, relay := socks5Associate(t, fmt.Sprintf("127.0.0.1:%d", socks))
	defer ctl.Close()
	hdr := []byte{0, 0, 0, 3, byte(len("uecho.b.p2p"))}
	hdr = append(hdr, "uecho.b.p2p"...)
	hdr = binary.BigEndian.AppendUint16(hdr, 7)
	udpExchange(t, client, relay, append(hdr, "hi"...), 30)
	for i := range 1000 {
		d := make([]byte, 16+i%1100)
		rand.Read(d)
		got := udpExchange(t, client, relay, append(append([]byte(nil), hdr...), d...), 3)
		if !bytes.Equal(got, append(append([]byte(nil), hdr...), d...)) {
			t.Fatalf("socks5 udp: datagram %d came back changed (%d bytes)", i, len(got))
		}
	}
	got := udpExchange(t, client, relay, append(append([]byte(nil), hdr...), big...), 3)
	if !bytes.Equal(got, append(append([]byte(nil), hdr...), big...)) {
		t.Fatalf("socks5 udp: the 3,000-byte datagram came back as %d bytes", len(got))
	}

	if dnsPort == 0 {
		t.Log("dnsmasq is not installed: the dig check was skipped (apt-get install dnsmasq-base dnsutils)")
		return
	}
	for _, q := range []struct{ name, typ, want string }{{"small.p2p.test", "A", "10.1.2.3"}, {"big.p2p.test", "TXT", "v=padding-7"}} {
		var out []byte
		for range 20 {
			out, err = exec.Command("dig", "+tries=1", "+time=2", "-p", fmt.Sprint(dnsFwd), "@127.0.0.1", q.name, q.typ, "+bufsize=4096").CombinedOutput()
			if err == nil && bytes.Contains(out, []byte(q.want)) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !bytes.Contains(out, []byte(q.want)) {
			t.Fatalf("dig %s through the udp forward: %v\n%s\ndnsmasq: %s\na: %s", q.name, err, out, dnsLog, a.log)
		}
		if q.typ == "TXT" && !bytes.Contains(out, []byte("v=padding-0")) {
			t.Fatalf("dig: the large answer is cut: %s", out)
		}
	}
}

// startDNSMasq runs dnsmasq on a loopback port with an A record and a TXT
// record whose answer is over 1,500 bytes (larger than a QUIC datagram).
func startDNSMasq(t *testing.T, log *bytes.Buffer) int {
	t.Helper()
	port := freeDualPort(t) // dnsmasq listens on TCP too
	dir := t.TempDir()
	conf := fmt.Sprintf("port=%d\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nkeep-in-foreground\n"+
		"edns-packet-max=4096\naddress=/small.p2p.test/10.1.2.3\n", port)
	for i := range 8 { // eight TXT records of 200+ bytes: an answer of ~1,800 bytes
		conf += fmt.Sprintf("txt-record=big.p2p.test,v=padding-%d-%s\n", i, strings.Repeat("x", 200))
	}
	cf := filepath.Join(dir, "dnsmasq.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dnsmasq", "--conf-file="+cf, "--pid-file="+filepath.Join(dir, "pid"), "--user=root")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "dnsmasq to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return port
}

// freeDualPort is a loopback port number free for both UDP and TCP.
func freeDualPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		port := freePort(t, "udp")
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// socks5Associate runs a SOCKS5 UDP ASSOCIATE and returns the control
// connection and the relay address.
func socks5Associate(t *testing.T, addr string) (net.Conn, netip.AddrPort) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte{5, 1, 0})
	var m [2]byte
	if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{5, 0} {
		t.Fatalf("socks5 method: % x %v", m, err)
	}
	c.Write([]byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	var rep [10]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil || rep[1] != 0 || rep[3] != 1 {
		t.Fatalf("UDP ASSOCIATE reply % x %v", rep, err)
	}
	c.SetDeadline(time.Time{})
	return c, netip.AddrPortFrom(netip.AddrFrom4([4]byte(rep[4:8])), binary.BigEndian.Uint16(rep[8:]))
}
