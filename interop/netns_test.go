package interop

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lab is a set of network namespaces made by one test and removed by its cleanup.
type lab struct {
	t      *testing.T
	prefix string
	spaces []string
	links  int
}

// newLab skips unless the test runs as root with iproute2.
func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespace tests need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespace tests need iproute2 (ip)")
	}
	b := make([]byte, 2)
	rand.Read(b)
	l := &lab{t: t, prefix: fmt.Sprintf("p2t%x", b)}
	t.Cleanup(l.cleanup)
	return l
}

func (l *lab) sh(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ns makes a namespace with lo up and returns its full name.
func (l *lab) ns(short string) string {
	name := l.prefix + short
	l.sh("ip", "netns", "add", name)
	l.spaces = append(l.spaces, name)
	l.sh("ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// link joins two namespaces with a veth pair and addresses both ends (CIDR).
func (l *lab) link(a, aAddr, b, bAddr string) (aIf, bIf string) {
	l.t.Helper()
	l.links++
	aIf, bIf = fmt.Sprintf("v%s%da", l.prefix[3:], l.links), fmt.Sprintf("v%s%db", l.prefix[3:], l.links)
	l.sh("ip", "link", "add", aIf, "netns", a, "type", "veth", "peer", "name", bIf, "netns", b)
	l.sh("ip", "-n", a, "addr", "add", aAddr, "dev", aIf)
	l.sh("ip", "-n", b, "addr", "add", bAddr, "dev", bIf)
	l.sh("ip", "-n", a, "link", "set", aIf, "up")
	l.sh("ip", "-n", b, "link", "set", bIf, "up")
	return aIf, bIf
}

func (l *lab) cleanup() {
	for _, n := range l.spaces {
		if out, err := exec.Command("ip", "netns", "pids", n).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				exec.Command("kill", "-9", pid).Run()
			}
		}
		exec.Command("ip", "netns", "del", n).Run()
	}
}

// httpIn serves dir with an unmodified Python HTTP server inside ns on 127.0.0.1:port.
func (l *lab) httpIn(ns, dir string, port int) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "python3", "-m", "http.server", "--bind", "127.0.0.1", fmt.Sprint(port), "--directory", dir)
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(l.t, "http server in "+ns, 10*time.Second, func() bool {
		return exec.Command("ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", fmt.Sprintf("http://127.0.0.1:%d/", port)).Run() == nil
	})
}

// curlIn fetches url from inside ns, retrying until timeout, and returns the body's SHA-256.
func (l *lab) curlIn(ns, url string, timeout time.Duration) (string, error) {
	out := filepath.Join(l.t.TempDir(), "got")
	var err error
	var msg []byte
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		msg, err = exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "-f", "--max-time", "20", "-o", out, url).CombinedOutput()
		if err == nil {
			data, rerr := os.ReadFile(out)
			if rerr != nil {
				return "", rerr
			}
			return sha(data), nil
		}
		time.Sleep(time.Second)
	}
	return "", fmt.Errorf("curl %s in %s: %v: %s", url, ns, err, msg)
}

// nsNode is a node that runs in a namespace and listens on all addresses.
func nsNode(t *testing.T, name, ns, discovery string) *testNode {
	n := newNode(t, name)
	n.netns, n.listen, n.discovery = ns, "0.0.0.0:4242", discovery
	return n
}

// idPeer is a [[peers]] entry with no address: the peer must be found by ID.
func (n *testNode) idPeer() string {
	return fmt.Sprintf("[[peers]]\nname = %q\nid = %q\n\n", n.name, n.id)
}

func blobDir(t *testing.T, size int) (dir, sum string) {
	dir = t.TempDir()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(dir, "blob"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, sha(b)
}

const filesService = `
[[services]]
name = "files"
target = "127.0.0.1:18080"
allow = ["*"]
`

func forwardTo(peer string) string {
	return fmt.Sprintf("\n[[forwards]]\nlisten = \"127.0.0.1:18081\"\npeer = %q\nservice = \"files\"\n", peer)
}

func TestNetnsMDNS(t *testing.T) {
	l := newLab(t)
	m1, m2 := l.ns("m1"), l.ns("m2")
	l.link(m1, "10.77.0.1/24", m2, "10.77.0.2/24")
	dir, sum := blobDir(t, 8<<20)
	l.httpIn(m2, dir, 18080)
	a := nsNode(t, "ma", m1, "mdns = true\ndht = false")
	b := nsNode(t, "mb", m2, "mdns = true\ndht = false")
	b.writeConfig(a.idPeer() + filesService)
	a.writeConfig(b.idPeer() + forwardTo("mb"))
	b.start()
	a.start()
	got, err := l.curlIn(m1, "http://127.0.0.1:18081/blob", 30*time.Second)
	if err != nil {
		t.Fatalf("%v\n--- a's log:\n%s", err, a.log)
	}
	if got != sum {
		t.Fatal("mDNS: transfer not byte-exact")
	}
	if st := a.peerState("mb"); st != "connected" {
		t.Fatalf("a's state of b: %q", st)
	}
	out, _ := a.ctl("--json", "peers")
	if !strings.Contains(string(out), `"mdns"`) {
		t.Fatalf("p2pctl peers does not say b was found by mdns: %s", out)
	}
}

// routed makes a router namespace and one host namespace per name on its
// own /24 (10.7<i>.0.2 behind 10.7<i>.0.1), with no multicast between them.
func (l *lab) routed(names ...string) (router string, hosts map[string]string) {
	router = l.ns("r")
	l.sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	hosts = map[string]string{}
	for i, h := range names {
		ns := l.ns(h)
		l.link(router, fmt.Sprintf("10.7%d.0.1/24", i+1), ns, fmt.Sprintf("10.7%d.0.2/24", i+1))
		l.sh("ip", "-n", ns, "route", "add", "default", "via", fmt.Sprintf("10.7%d.0.1", i+1))
		hosts[h] = ns
	}
	return router, hosts
}

// TestNetnsDHT: a finds c by ID alone through the DHT (bootstrap node b,
// routed subnets) and fetches 8 MiB byte-exact, over either carrier.
func TestNetnsDHT(t *testing.T) {
	for _, transport := range faultCarriers {
		t.Run(transport, func(t *testing.T) { testNetnsDHT(t, transport) })
	}
}

func testNetnsDHT(t *testing.T, transport string) {
	l := newLab(t)
	_, hosts := l.routed("a", "b", "c")
	dir, sum := blobDir(t, 8<<20)
	l.httpIn(hosts["c"], dir, 18080)
	db := nsNode(t, "db", hosts["b"], "mdns = false\ndht = true")
	boot := fmt.Sprintf("bootstrap = [\"/ip4/10.72.0.2/udp/4242/quic-v1/p2p/%s\"]", db.id)
	da := nsNode(t, "da", hosts["a"], "mdns = false\ndht = true\n"+boot)
	dc := nsNode(t, "dc", hosts["c"], "mdns = false\ndht = true\n"+boot)
	db.writeConfig(da.idPeer() + dc.idPeer())
	dc.writeConfig(da.idPeer() + db.idPeer() + filesService)
	da.writeConfig(dc.idPeer() + fmt.Sprintf("transport = %q\n\n", transport) + db.idPeer() + forwardTo("dc"))
	db.start()
	dc.start()
	da.start()
	got, err := l.curlIn(hosts["a"], "http://127.0.0.1:18081/blob", 45*time.Second)
	if err != nil {
		t.Fatalf("%v\n--- a's log:\n%s", err, da.log)
	}
	if got != sum {
		t.Fatal("DHT: transfer not byte-exact")
	}
	out, _ := da.ctl("--json", "peers")
	if !strings.Contains(string(out), `"dht"`) {
		t.Fatalf("p2pctl peers does not say c was found by the dht: %s", out)
	}
	wantCarrier(t, da, "dc", transport)
}

// TestNetnsDHTSilentBootstrap: a and c know each other by ID alone and
// have both joined the DHT through bootstrap node b. Then b hangs
// (SIGSTOP: its connections stay open and nothing answers, as with a node
// whose host froze), and a's first contact with c must still succeed
// within the ping's 8 s, less than kad-dht's own 10 s read timeout: what a
// learned through b is enough, and nothing waits on b. (A lookup that has
// to ask the hung node is bounded by dhtRequestTimeout; discovery's
// TestDHTSilentPeer checks that.)
func TestNetnsDHTSilentBootstrap(t *testing.T) {
	l := newLab(t)
	_, hosts := l.routed("a", "b", "c")
	db := nsNode(t, "db", hosts["b"], "mdns = false\ndht = true")
	boot := fmt.Sprintf("bootstrap = [\"/ip4/10.72.0.2/udp/4242/quic-v1/p2p/%s\"]", db.id)
	da := nsNode(t, "da", hosts["a"], "mdns = false\ndht = true\n"+boot)
	dc := nsNode(t, "dc", hosts["c"], "mdns = false\ndht = true\n"+boot)
	db.writeConfig(da.idPeer() + dc.idPeer())
	dc.writeConfig(da.idPeer() + db.idPeer())
	da.writeConfig(dc.idPeer() + db.idPeer())
	db.start()
	dc.start()
	da.start()
	// Both know the other through b before b hangs.
	for _, n := range []*testNode{da, dc} {
		waitFor(t, n.name+"'s routing table to hold b and the other node", 30*time.Second, func() bool {
			return dhtRoutingTable(n) >= 2
		})
	}
	if err := db.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.cmd.Process.Signal(syscall.SIGCONT) }) // so that it can stop
	start := time.Now()
	out, err := da.ctl("--json", "ping", "dc", "--count", "1", "--timeout", "8s")
	if err != nil {
		t.Fatalf("a's first contact with c while the bootstrap node hangs: %v: %s\n--- a's log:\n%s", err, out, da.log)
	}
	t.Logf("first contact with the bootstrap node hung: %v", time.Since(start).Round(time.Millisecond))
}

// dhtRoutingTable is the size of n's DHT routing table from `p2pctl
// status`, or -1.
func dhtRoutingTable(n *testNode) int {
	out, err := n.ctl("--json", "status")
	if err != nil {
		return -1
	}
	var st struct {
		DHT *struct {
			RoutingTable int `json:"routing_table"`
		} `json:"dht"`
	}
	if json.Unmarshal(out, &st) != nil || st.DHT == nil {
		return -1
	}
	return st.DHT.RoutingTable
}

// nat makes the T3 topology of RELIABILITY.md: cli (192.168.1.100) behind a
// MASQUERADE router (192.168.1.1 | 10.0.0.1) in front of srv (10.0.0.100),
// which has no route back to 192.168.1.0/24.
func (l *lab) nat() (cli, router, srv, srvIf string) {
	cli, router, srv = l.ns("cli"), l.ns("nat"), l.ns("srv")
	l.link(router, "192.168.1.1/24", cli, "192.168.1.100/24")
	rs, ss := l.link(router, "10.0.0.1/24", srv, "10.0.0.100/24")
	l.sh("ip", "-n", cli, "route", "add", "default", "via", "192.168.1.1")
	l.sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.sh("ip", "netns", "exec", router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "192.168.1.0/24", "-o", rs, "-j", "MASQUERADE")
	return cli, router, srv, ss
}

// TestNetnsNATAndMove: a client behind MASQUERADE reaches a public server it
// knows by ID only (through a DHT bootstrap node on the public side); then
// the server restarts on a new address and is found and reached again.
func TestNetnsNATAndMove(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
	cli, router, srv, srvIf := l.nat()
	dir, sum := blobDir(t, 4<<20)
	l.httpIn(srv, dir, 18080)
	boot := nsNode(t, "boot", router, "mdns = false\ndht = true")
	bootAddr := fmt.Sprintf("bootstrap = [\"/ip4/10.0.0.1/udp/4242/quic-v1/p2p/%s\"]", boot.id)
	s := nsNode(t, "srv", srv, "mdns = false\ndht = true\n"+bootAddr)
	c := nsNode(t, "cli", cli, "mdns = false\ndht = true\n"+strings.Replace(bootAddr, "10.0.0.1", "192.168.1.1", 1))
	boot.writeConfig(s.idPeer() + c.idPeer())
	s.writeConfig(c.idPeer() + boot.idPeer() + filesService)
	c.writeConfig(s.idPeer() + boot.idPeer() + forwardTo("srv"))
	boot.start()
	s.start()
	c.start()
	url := "http://127.0.0.1:18081/blob"
	got, err := l.curlIn(cli, url, 45*time.Second)
	if err != nil {
		t.Fatalf("through the NAT: %v\n--- cli's log:\n%s", err, c.log)
	}
	if got != sum {
		t.Fatal("through the NAT: transfer not byte-exact")
	}

	// The server moves: killed, readdressed, started again.
	s.kill()
	l.sh("ip", "-n", srv, "addr", "del", "10.0.0.100/24", "dev", srvIf)
	l.sh("ip", "-n", srv, "addr", "add", "10.0.0.101/24", "dev", srvIf)
	s.start()
	moved := time.Now()
	got, err = l.curlIn(cli, url, 90*time.Second)
	if err != nil {
		t.Fatalf("after the server moved: %v\n--- cli's log:\n%s", err, c.log)
	}
	t.Logf("the moved server was reached again %v after its restart", time.Since(moved).Round(100*time.Millisecond))
	if got != sum {
		t.Fatal("after the move: transfer not byte-exact")
	}
	out, _ := c.ctl("--json", "peers")
	if !strings.Contains(string(out), "10.0.0.101:4242") {
		t.Fatalf("cli does not show the server's new address: %s", out)
	}
}

// natted puts a host behind its own MASQUERADE router hanging off pub:
// host 192.168.<i>.100 — router 192.168.<i>.1 | 10.0.<i>.2 — pub 10.0.<i>.1.
func (l *lab) natted(pub string, i int) (host string) {
	host, router := l.ns(fmt.Sprintf("h%d", i)), l.ns(fmt.Sprintf("n%d", i))
	l.link(router, fmt.Sprintf("192.168.%d.1/24", i), host, fmt.Sprintf("192.168.%d.100/24", i))
	out, _ := l.link(router, fmt.Sprintf("10.0.%d.2/24", i), pub, fmt.Sprintf("10.0.%d.1/24", i))
	l.sh("ip", "-n", host, "route", "add", "default", "via", fmt.Sprintf("192.168.%d.1", i))
	l.sh("ip", "-n", router, "route", "add", "default", "via", fmt.Sprintf("10.0.%d.1", i))
	l.sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.sh("ip", "netns", "exec", router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", fmt.Sprintf("192.168.%d.0/24", i), "-o", out, "-j", "MASQUERADE")
	return host
}

// TestNetnsRelay: A and B sit behind two separate NATs and know each other
// by ID only; a relay node on the public side relays for its trusted peers.
// A's forward reaches B's service through the relay, byte-exact, and p2pctl
// shows the path as relayed.
func TestNetnsRelay(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
	pub := l.ns("pub")
	l.sh("ip", "netns", "exec", pub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	ha, hb := l.natted(pub, 1), l.natted(pub, 2)
	rel := l.ns("rel")
	l.link(pub, "10.0.3.1/24", rel, "10.0.3.2/24")
	l.sh("ip", "-n", rel, "route", "add", "default", "via", "10.0.3.1")
	dir, sum := blobDir(t, 4<<20)
	l.httpIn(hb, dir, 18080)

	r := nsNode(t, "relay", rel, "mdns = false\ndht = false\nrelay_service = true")
	relays := fmt.Sprintf("relays = [\"/ip4/10.0.3.2/udp/4242/quic-v1/p2p/%s\"]", r.id)
	a := nsNode(t, "ra", ha, "mdns = false\ndht = false\n"+relays)
	b := nsNode(t, "rb", hb, "mdns = false\ndht = false\n"+relays)
	r.writeConfig(a.idPeer() + b.idPeer())
	a.writeConfig(b.idPeer() + forwardTo("rb"))
	b.writeConfig(a.idPeer() + filesService)
	r.start()
	b.start()
	a.start()
	got, err := l.curlIn(ha, "http://127.0.0.1:18081/blob", 60*time.Second)
	if err != nil {
		t.Fatalf("through the relay: %v\n--- a's log:\n%s\n--- b's log:\n%s", err, a.log, b.log)
	}
	if got != sum {
		t.Fatal("through the relay: transfer not byte-exact")
	}
	out, _ := a.ctl("--json", "peers")
	if !strings.Contains(string(out), `"relayed"`) || !strings.Contains(string(out), r.id) {
		t.Fatalf("p2pctl peers does not show a relayed path through %s: %s", r.id, out)
	}
}
