package interop

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// faultPair is the T3 topology with a server node offering files and a
// client node forwarding to it by static address (no discovery), for the
// fault tests of RELIABILITY.md.
func faultPair(t *testing.T) (l *lab, cli, router string, c *testNode, sum string) {
	return faultPairWith(t, "", nil)
}

// faultPairWith is faultPair with both nodes' [discovery] body and with prep
// run on the topology before the nodes start (srvIf is the server's
// interface towards the router).
func faultPairWith(t *testing.T, discovery string, prep func(l *lab, cli, router, srv, srvIf string)) (l *lab, cli, router string, c *testNode, sum string) {
	l = newLab(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
	cli, router, srv, srvIf := l.nat()
	if prep != nil {
		prep(l, cli, router, srv, srvIf)
	}
	dir, sum := blobDir(t, 2<<20)
	l.httpIn(srv, dir, 18080)
	s := nsNode(t, "srv", srv, discovery)
	c = nsNode(t, "cli", cli, discovery)
	s.writeConfig(c.idPeer() + filesService)
	c.writeConfig(fmt.Sprintf("[[peers]]\nname = \"srv\"\nid = %q\naddresses = [\"10.0.0.100:4242\"]\n", s.id) + forwardTo("srv"))
	s.start()
	c.start()
	return l, cli, router, c, sum
}

// TestNetnsLoss (F5): 2 MB transfers stay byte-exact with 2 % and 5 %
// random loss of UDP packets in both directions at the router.
func TestNetnsLoss(t *testing.T) {
	l, cli, router, c, sum := faultPair(t)
	for _, p := range []string{"0.02", "0.05"} {
		rule := []string{"ip", "netns", "exec", router, "iptables", "-I", "FORWARD", "-p", "udp", "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"}
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
}

// TestNetnsPartitionHeal (F9): a 10 s partition, then the link heals; the
// client reaches the server again within seconds, without any action.
func TestNetnsPartitionHeal(t *testing.T) {
	l, cli, router, c, sum := faultPair(t)
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
}

// TestNetnsMTU1280 (F8): the link between the router and the server has an
// MTU of 1280 at both ends, and nothing sends ICMP about it (veth drops
// what is too big). The handshake completes and a transfer is byte-exact,
// with the overlay on its own sockets and sharing them with libp2p (whose
// listener then answers the overlay's handshakes).
func TestNetnsMTU1280(t *testing.T) {
	for name, disc := range map[string]string{"no discovery": "", "libp2p shares the port": "mdns = true"} {
		t.Run(name, func(t *testing.T) {
			l, cli, _, c, sum := faultPairWith(t, disc, func(l *lab, _, router, srv, srvIf string) {
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
		})
	}
}
