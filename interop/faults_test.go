package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// faultCarriers are the client's transport settings the fault tests that
// apply to both carriers run with: auto (QUIC here) and tcp.
var faultCarriers = []string{"auto", "tcp"}

// faultPairOver is the T3 topology with a server node offering files and a
// client node forwarding to it by static address (no discovery), for the
// fault tests of RELIABILITY.md, the client's peer entry set to transport
// ("auto", "quic" or "tcp").
func faultPairOver(t *testing.T, transport string) (l *lab, cli, router string, c *testNode, sum string) {
	l, cli, router, c, _, sum = faultTopo(t, "", transport, 2<<20, nil)
	return l, cli, router, c, sum
}

// wantCarrier fails the test unless c's session with peer runs over the
// carrier that transport asks for (auto: QUIC, on these unimpaired links).
func wantCarrier(t *testing.T, c *testNode, peer, transport string) {
	t.Helper()
	want := transport
	if want == "auto" {
		want = "quic"
	}
	if got := carrierOf(t, c, peer); got != want {
		t.Fatalf("the session with %s runs over %q; want %q (transport = %q)", peer, got, want, transport)
	}
}

// faultPairWith is faultPair with both nodes' [discovery] body and with prep
// run on the topology before the nodes start (srvIf is the server's
// interface towards the router).
func faultPairWith(t *testing.T, discovery string, blobSize int, prep func(l *lab, cli, router, srv, srvIf string)) (l *lab, cli, router string, c *testNode, sum string) {
	l, cli, router, c, _, sum = faultTopo(t, discovery, "", blobSize, prep)
	return l, cli, router, c, sum
}

// faultTopo is faultPairWith that also returns the server node; transport,
// if not "", is the client's transport setting for the server.
func faultTopo(t *testing.T, discovery, transport string, blobSize int, prep func(l *lab, cli, router, srv, srvIf string)) (l *lab, cli, router string, c, s *testNode, sum string) {
	l = newLab(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
	cli, router, srv, srvIf := l.nat()
	if prep != nil {
		prep(l, cli, router, srv, srvIf)
	}
	dir, sum := blobDir(t, blobSize)
	l.httpIn(srv, dir, 18080)
	s = nsNode(t, "srv", srv, discovery)
	c = nsNode(t, "cli", cli, discovery)
	s.writeConfig(c.idPeer() + filesService)
	peer := fmt.Sprintf("[[peers]]\nname = \"srv\"\nid = %q\naddresses = [\"10.0.0.100:4242\"]\n", s.id)
	if transport != "" {
		peer += fmt.Sprintf("transport = %q\n", transport)
	}
	c.writeConfig(peer + forwardTo("srv"))
	s.start()
	c.start()
	return l, cli, router, c, s, sum
}

// TestNetnsLoss (F5): 2 MB transfers stay byte-exact with 2 % and 5 %
// random loss of the carrier's packets (UDP for QUIC, TCP segments for the
// TCP carrier) in both directions at the router.
func TestNetnsLoss(t *testing.T) {
	for _, transport := range faultCarriers {
		t.Run(transport, func(t *testing.T) {
			l, cli, router, c, sum := faultPairOver(t, transport)
			proto := "udp"
			if transport == "tcp" {
				proto = "tcp"
			}
			for _, p := range []string{"0.02", "0.05"} {
				rule := []string{"ip", "netns", "exec", router, "iptables", "-I", "FORWARD", "-p", proto, "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"}
				l.sh(rule...)
				got, err := l.curlIn(cli, "http://127.0.0.1:18081/blob", 60*time.Second)
				if err != nil {
					t.Fatalf("loss %s: %v\n--- cli's log:\n%s", p, err, c.log)
				}
				if got != sum {
					t.Fatalf("loss %s: transfer not byte-exact", p)
				}
				rule[5] = "-D"
				l.sh(rule...)
			}
			wantCarrier(t, c, "srv", transport)
		})
	}
}

// TestNetnsPartitionHeal (F9): a 10 s partition, then the link heals; the
// client reaches the server again within seconds, without any action, over
// either carrier.
func TestNetnsPartitionHeal(t *testing.T) {
	for _, transport := range faultCarriers {
		t.Run(transport, func(t *testing.T) {
			l, cli, router, c, sum := faultPairOver(t, transport)
			if got, err := l.curlIn(cli, "http://127.0.0.1:18081/blob", 30*time.Second); err != nil || got != sum {
				t.Fatalf("before the partition: %v", err)
			}
			l.sh("ip", "netns", "exec", router, "iptables", "-I", "FORWARD", "-j", "DROP")
			time.Sleep(10 * time.Second)
			l.sh("ip", "netns", "exec", router, "iptables", "-D", "FORWARD", "-j", "DROP")
			healed := time.Now()
			got, err := l.curlIn(cli, "http://127.0.0.1:18081/blob", 60*time.Second)
			if err != nil {
				t.Fatalf("after the heal: %v\n--- cli's log:\n%s", err, c.log)
			}
			if got != sum {
				t.Fatal("after the heal: transfer not byte-exact")
			}
			t.Logf("reached again %v after the heal", time.Since(healed).Round(100*time.Millisecond))
			wantCarrier(t, c, "srv", transport)
		})
	}
}

// TestNetnsMTU1280 (F8): the link between the router and the server has an
// MTU of 1280 at both ends, and nothing sends ICMP about it (veth drops
// what is too big). The handshake completes and a transfer is byte-exact,
// with the overlay on its own sockets and sharing them with libp2p (whose
// listener then answers the overlay's handshakes), and over the TCP carrier.
func TestNetnsMTU1280(t *testing.T) {
	for _, tc := range []struct{ name, disc, transport string }{
		{"no discovery", "", ""}, {"libp2p shares the port", "mdns = true", ""}, {"tcp carrier", "", "tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, cli, _, c, _, sum := faultTopo(t, tc.disc, tc.transport, 2<<20, func(l *lab, _, router, srv, srvIf string) {
				routerIf := strings.TrimSuffix(srvIf, "b") + "a" // the other end of the veth pair
				l.sh("ip", "-n", srv, "link", "set", srvIf, "mtu", "1280")
				l.sh("ip", "-n", router, "link", "set", routerIf, "mtu", "1280")
			})
			got, err := l.curlIn(cli, "http://127.0.0.1:18081/blob", 30*time.Second)
			if err != nil {
				t.Fatalf("over MTU 1280: %v\n--- cli's log:\n%s", err, c.log)
			}
			if got != sum {
				t.Fatal("over MTU 1280: transfer not byte-exact")
			}
			if tc.transport != "" {
				wantCarrier(t, c, "srv", tc.transport)
			}
		})
	}
}

// curlOnce runs curl once in ns (no retry) with extra arguments and returns
// the SHA-256 of what it fetched.
func (l *lab) curlOnce(ns, url string, args ...string) (string, error) {
	out := filepath.Join(l.t.TempDir(), "got")
	cmd := append([]string{"netns", "exec", ns, "curl", "-sS", "-f", "--max-time", "60", "-o", out}, args...)
	if msg, err := exec.Command("ip", append(cmd, url)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("curl %s in %s: %v: %s", url, ns, err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return "", err
	}
	return sha(data), nil
}

// fetchAsync fetches url once in ns in the background; the channel gets nil
// when what came back has SHA-256 sum.
func (l *lab) fetchAsync(ns, url, sum string) <-chan error {
	done := make(chan error, 1)
	go func() {
		got, err := l.curlOnce(ns, url)
		if err == nil && got != sum {
			err = fmt.Errorf("transfer not byte-exact")
		}
		done <- err
	}()
	return done
}

// ctlJSON runs p2pctl --json cmd on n (failing the test if it fails) and
// decodes its output into v; it returns the output and the decoding error.
func ctlJSON(t *testing.T, n *testNode, cmd string, v any) ([]byte, error) {
	t.Helper()
	out, err := n.ctl("--json", cmd)
	if err != nil {
		t.Fatalf("p2pctl %s: %v", cmd, err)
	}
	return out, json.Unmarshal(out, v)
}

// sessionSince is when c's one session with peer was established, from
// p2pctl --json sessions.
func sessionSince(t *testing.T, c *testNode, peer string) time.Time {
	t.Helper()
	var doc struct {
		Sessions []struct {
			Peer          string    `json:"peer"`
			EstablishedAt time.Time `json:"established_at"`
		} `json:"sessions"`
	}
	out, err := ctlJSON(t, c, "sessions", &doc)
	if err != nil || len(doc.Sessions) != 1 || doc.Sessions[0].Peer != peer {
		t.Fatalf("sessions: %s (%v); want one with %s", out, err, peer)
	}
	return doc.Sessions[0].EstablishedAt
}

// TestNetnsNATRebinding (F4): the NAT maps the client to a random port of
// 40000-40100 (then of 40101-40200), and its table is flushed 1 s and 6 s into a 10 MB transfer
// that the router's link to the client slows to about 8 s (so that the
// bytes are on the wire, not in the client daemon's buffers, when the table
// goes): the server sees the client come from a new port each time. The
// transfer is byte-exact and stays on the one session.
func TestNetnsNATRebinding(t *testing.T) {
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("needs conntrack")
	}
	l, cli, router, c, sum := faultPairWith(t, "", 10<<20, func(l *lab, _, router, _, srvIf string) {
		l.sh("ip", "netns", "exec", router, "iptables", "-t", "nat", "-I", "POSTROUTING", "1", "-s", "192.168.1.0/24",
			"-p", "udp", "-j", "MASQUERADE", "--to-ports", "40000-40100", "--random")
		shapeToClient(l, router, srvIf)
	})
	url := "http://127.0.0.1:18081/blob"
	if got, err := l.curlIn(cli, url, 30*time.Second); err != nil || got != sum {
		t.Fatalf("before rebinding: %v", err)
	}
	since := sessionSince(t, c, "srv")
	done := l.fetchAsync(cli, url, sum)
	ports := map[string]bool{}
	for i, wait := range []time.Duration{time.Second, 5 * time.Second} {
		time.Sleep(wait)
		if i == 1 {
			// A range apart from the first, so that the second mapping is
			// a new port for sure (one of 101 random ports could repeat).
			l.sh("ip", "netns", "exec", router, "iptables", "-t", "nat", "-R", "POSTROUTING", "1", "-s", "192.168.1.0/24",
				"-p", "udp", "-j", "MASQUERADE", "--to-ports", "40101-40200", "--random")
		}
		l.sh("ip", "netns", "exec", router, "conntrack", "-F")
		// The new mapping comes with the session's next packet: the
		// transfer's, or a keepalive within a second.
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if p := natPort(router); p != "" {
				ports[p] = true
				break
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("during rebinding: %v\n--- cli's log:\n%s", err, c.log)
	}
	if now := sessionSince(t, c, "srv"); !now.Equal(since) {
		t.Errorf("the session was replaced (established %v, then %v); a rebinding should keep it", since, now)
	}
	t.Logf("the client came from %d NAT ports: %v", len(ports), ports)
	if len(ports) < 2 {
		t.Errorf("the NAT used %d port(s) for the client; the test needs it to rebind", len(ports))
	}
}

// natPort is the port the router's NAT maps the client to in its UDP
// entry with the server's port 4242 (the reply direction's destination),
// or "" while there is none.
func natPort(router string) string {
	out, _ := exec.Command("ip", "netns", "exec", router, "conntrack", "-L", "-p", "udp", "--dport", "4242").CombinedOutput()
	for _, f := range strings.Fields(string(out)) {
		if p, ok := strings.CutPrefix(f, "dport="); ok && p != "4242" {
			return p
		}
	}
	return ""
}

// TestNetnsNATExpiry (F10): the NAT forgets an idle UDP mapping after 2 s;
// after 3 s of silence the session still carries a transfer, without a new
// handshake.
func TestNetnsNATExpiry(t *testing.T) {
	l, cli, _, c, sum := faultPairWith(t, "", 2<<20, func(l *lab, _, router, _, _ string) {
		l.sh("ip", "netns", "exec", router, "sysctl", "-qw",
			"net.netfilter.nf_conntrack_udp_timeout=2", "net.netfilter.nf_conntrack_udp_timeout_stream=2")
	})
	url := "http://127.0.0.1:18081/blob"
	if got, err := l.curlIn(cli, url, 30*time.Second); err != nil || got != sum {
		t.Fatalf("before the idle period: %v", err)
	}
	since := sessionSince(t, c, "srv")
	time.Sleep(3 * time.Second)
	got, err := l.curlOnce(cli, url)
	if err != nil || got != sum {
		t.Fatalf("after the mapping expired: %v\n--- cli's log:\n%s", err, c.log)
	}
	if now := sessionSince(t, c, "srv"); !now.Equal(since) {
		t.Errorf("the session was replaced (established %v, then %v)", since, now)
	}
}

// shapeToClient slows the router's link to the client to 10 Mbit/s, so that
// a 10 MB transfer is on the wire for about 8 s instead of sitting in the
// client daemon's stream buffers after a fraction of a second.
func shapeToClient(l *lab, router, srvIf string) {
	routerIf := strings.TrimSuffix(srvIf, "2b") + "1a" // the router's end of nat's first link, to the client
	l.sh("ip", "netns", "exec", router, "tc", "qdisc", "add", "dev", routerIf, "root", "tbf",
		"rate", "10mbit", "burst", "32kbit", "latency", "400ms")
}

// TestNetnsLinkDownUp (F2): the client's link goes down for 2 s in the
// middle of a 10 MB transfer and comes back (with its default route); the
// transfer resumes and completes byte-exact on the same session.
func TestNetnsLinkDownUp(t *testing.T) {
	var cliIf string
	l, cli, _, c, sum := faultPairWith(t, "", 10<<20, func(l *lab, _, router, _, srvIf string) {
		shapeToClient(l, router, srvIf)
		cliIf = strings.TrimSuffix(srvIf, "2b") + "1b" // the client's end of nat's first link
	})
	url := "http://127.0.0.1:18081/blob"
	if got, err := l.curlIn(cli, url, 30*time.Second); err != nil || got != sum {
		t.Fatalf("before the outage: %v", err)
	}
	since := sessionSince(t, c, "srv")
	done := l.fetchAsync(cli, url, sum)
	time.Sleep(2 * time.Second)
	l.sh("ip", "-n", cli, "link", "set", cliIf, "down")
	time.Sleep(2 * time.Second)
	l.sh("ip", "-n", cli, "link", "set", cliIf, "up")
	l.sh("ip", "-n", cli, "route", "replace", "default", "via", "192.168.1.1")
	if err := <-done; err != nil {
		t.Fatalf("across the outage: %v\n--- cli's log:\n%s", err, c.log)
	}
	if now := sessionSince(t, c, "srv"); !now.Equal(since) {
		t.Errorf("the session was replaced (established %v, then %v); a 2 s outage should not end it", since, now)
	}
}

// TestNetnsNoRoute: a node whose peer's only address has no route (a
// namespace with nothing but loopback) tells why it cannot reach it: the
// dial's error, in p2pctl peers, names the refused sends. (Send errors are
// otherwise loss to QUIC, so this must not turn into a bare timeout.)
func TestNetnsNoRoute(t *testing.T) {
	l := newLab(t)
	ns := l.ns("lone")
	l.sh("ip", "-n", ns, "link", "set", "lo", "up")
	peerKey := newNode(t, "far") // only for a valid peer ID; never started
	c := nsNode(t, "cli", ns, "")
	c.writeConfig(fmt.Sprintf("[[peers]]\nname = \"far\"\nid = %q\naddresses = [\"10.9.9.9:4242\"]\nalways_on = true\n", peerKey.id) + forwardTo("far"))
	c.start()
	var lastErr string
	waitFor(t, "a dial error for far", 30*time.Second, func() bool {
		out, err := c.ctl("--json", "peers")
		if err != nil {
			return false
		}
		var doc struct {
			Peers []struct {
				Name      string `json:"name"`
				LastError string `json:"last_error"`
			} `json:"peers"`
		}
		if json.Unmarshal(out, &doc) != nil || len(doc.Peers) != 1 {
			return false
		}
		lastErr = doc.Peers[0].LastError
		return lastErr != ""
	})
	if !strings.Contains(lastErr, "network is unreachable") {
		t.Fatalf("last error %q; want it to say the network is unreachable", lastErr)
	}
	t.Logf("p2pctl peers says: %s", lastErr)
}

// peerEndpoint is the address n's session with peer runs to, from p2pctl
// --json peers.
func peerEndpoint(t *testing.T, n *testNode, peer string) string {
	t.Helper()
	var doc struct {
		Peers []struct {
			Name     string `json:"name"`
			Endpoint string `json:"endpoint"`
		} `json:"peers"`
	}
	if out, err := ctlJSON(t, n, "peers", &doc); err != nil {
		t.Fatalf("peers: %s: %v", out, err)
	}
	for _, p := range doc.Peers {
		if p.Name == peer {
			return p.Endpoint
		}
	}
	return ""
}

// TestNetnsRoaming (F3): in the middle of a 10 MB transfer the NAT starts
// to send the client's packets from another public address (SNAT to a
// second address, its table flushed), as when a client moves between
// networks. The transfer completes byte-exact on the same session, and the
// server's p2pctl shows the peer at its new address.
func TestNetnsRoaming(t *testing.T) {
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("needs conntrack")
	}
	var routerOut string
	l, cli, router, c, s, sum := faultTopo(t, "", "", 10<<20, func(l *lab, _, router, _, srvIf string) {
		shapeToClient(l, router, srvIf)
		routerOut = strings.TrimSuffix(srvIf, "b") + "a" // the router's public side
		l.sh("ip", "-n", router, "addr", "add", "10.0.0.2/24", "dev", routerOut)
	})
	url := "http://127.0.0.1:18081/blob"
	if got, err := l.curlIn(cli, url, 30*time.Second); err != nil || got != sum {
		t.Fatalf("before the move: %v", err)
	}
	if ep := peerEndpoint(t, s, "cli"); !strings.HasPrefix(ep, "10.0.0.1:") {
		t.Fatalf("server sees the client at %q before the move, want 10.0.0.1", ep)
	}
	since := sessionSince(t, c, "srv")
	done := l.fetchAsync(cli, url, sum)
	time.Sleep(2 * time.Second)
	l.sh("ip", "netns", "exec", router, "iptables", "-t", "nat", "-I", "POSTROUTING", "1", "-s", "192.168.1.0/24",
		"-o", routerOut, "-j", "SNAT", "--to-source", "10.0.0.2")
	l.sh("ip", "netns", "exec", router, "conntrack", "-F")
	if err := <-done; err != nil {
		t.Fatalf("across the move: %v\n--- cli's log:\n%s", err, c.log)
	}
	if ep := peerEndpoint(t, s, "cli"); !strings.HasPrefix(ep, "10.0.0.2:") {
		t.Errorf("server sees the client at %q after the move, want 10.0.0.2", ep)
	}
	if now := sessionSince(t, c, "srv"); !now.Equal(since) {
		t.Errorf("the session was replaced (established %v, then %v); a move should keep it", since, now)
	}
}
