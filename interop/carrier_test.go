package interop

import (
	"testing"
	"time"
)

// carrierOf is the carrier of c's one session with peer, from p2pctl
// --json sessions ("" without a session).
func carrierOf(t *testing.T, c *testNode, peer string) string {
	t.Helper()
	var doc struct {
		Sessions []struct {
			Peer    string `json:"peer"`
			Carrier string `json:"carrier"`
		} `json:"sessions"`
	}
	if _, err := ctlJSON(t, c, "sessions", &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Sessions {
		if s.Peer == peer {
			return s.Carrier
		}
	}
	return ""
}

// TestNetnsUDPBlockedFallsBackToTCP (issue 9): with UDP dropped at the
// router, real daemons with no carrier configured (auto) reach each other
// over TCP at the same port number, byte-exact; when UDP comes back the
// session moves to QUIC within 30 s, and a transfer running across the move
// stays byte-exact.
func TestNetnsUDPBlockedFallsBackToTCP(t *testing.T) {
	block := []string{"FORWARD", "-p", "udp", "-j", "DROP"}
	var routerNS string
	l, cli, _, c, sum := faultPairWith(t, "", 8<<20, func(l *lab, _, router, _, srvIf string) {
		routerNS = router
		l.sh(append([]string{"ip", "netns", "exec", router, "iptables", "-I"}, block...)...)
		shapeToClient(l, router, srvIf)
	})
	url := "http://127.0.0.1:18081/blob"
	start := time.Now()
	got, err := l.curlIn(cli, url, 60*time.Second)
	if err != nil || got != sum {
		t.Fatalf("with UDP blocked: %v\n--- cli's log:\n%s", err, c.log)
	}
	t.Logf("first transfer with UDP blocked done %v after the request", time.Since(start).Round(time.Millisecond))
	if carrier := carrierOf(t, c, "srv"); carrier != "tcp" {
		t.Fatalf("carrier %q with UDP blocked, want tcp", carrier)
	}

	done := l.fetchAsync(cli, url, sum) // runs across the move
	time.Sleep(500 * time.Millisecond)
	l.sh(append([]string{"ip", "netns", "exec", routerNS, "iptables", "-D"}, block...)...)
	back := time.Now()
	deadline := back.Add(30 * time.Second)
	for carrierOf(t, c, "srv") != "quic" {
		if time.Now().After(deadline) {
			t.Fatalf("still on %q 30 s after UDP came back\n--- cli's log:\n%s", carrierOf(t, c, "srv"), c.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("moved to QUIC %v after UDP came back", time.Since(back).Round(time.Millisecond))
	if err := <-done; err != nil {
		t.Fatalf("the transfer across the move: %v", err)
	}
	if got, err := l.curlIn(cli, url, 60*time.Second); err != nil || got != sum {
		t.Fatalf("after the move: %v", err)
	}
}
