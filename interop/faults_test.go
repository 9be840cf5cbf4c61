package interop

import (
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// faultPair is the T3 topology with a server node offering files and a
// client node forwarding to it by static address (no discovery), for the
// fault tests of RELIABILITY.md.
func faultPair(t *testing.T) (l *lab, cli, router string, c *testNode, sum string) {
	l = newLab(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
	cli, router, srv, _ := l.nat()
	dir, sum := blobDir(t, 2<<20)
	l.httpIn(srv, dir, 18080)
	s := nsNode(t, "srv", srv, "")
	c = nsNode(t, "cli", cli, "")
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
