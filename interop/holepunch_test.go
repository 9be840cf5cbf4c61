package interop

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The hole-punching topology. libp2p engages AutoNAT and DCUtR only for
// addresses it counts as public, which excludes RFC 1918, 100.64.0.0/10 and
// the documentation ranges; 11.0.0.0/8 is public to it and, inside isolated
// namespaces, reaches nothing real. The "internet" is a router namespace
// with one 11.0.<i>.0/24 segment per attached namespace; each NAT routes a
// private LAN 10.<i>.0.0/24 to its segment.
//
//	host i 10.<i>.0.100 — NAT i 10.<i>.0.1 | 11.0.<i>.2 — inet 11.0.<i>.1
//	relay 11.0.100.2 — inet
//
// bench/holepunch.go measures every pair of NAT kinds in the same
// topology, with a DHT bootstrap node beside the relay.
const punchRelayIP = "11.0.100.2"

// natKind is how a NAT maps and filters UDP (RFC 4787 terms).
type natKind string

const (
	// natEI maps and filters independently of the endpoint (full cone):
	// MASQUERADE keeps the port, and inbound packets to the node's port
	// from anyone are forwarded to it.
	natEI natKind = "EI"
	// natPR maps independently of the endpoint but lets in only packets
	// from an address and port the host sent to (port-restricted cone):
	// plain MASQUERADE, whose filter is conntrack.
	natPR natKind = "PR"
	// natSym maps every destination to a new random port (symmetric):
	// MASQUERADE --random-fully.
	natSym natKind = "SYM"
)

// punchNet is the internet namespace of a hole-punching lab.
type punchNet struct {
	l    *lab
	inet string
}

func newPunchNet(l *lab) *punchNet {
	inet := l.ns("inet")
	l.sh("ip", "netns", "exec", inet, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return &punchNet{l: l, inet: inet}
}

// public attaches a namespace with the public address 11.0.<i>.2 on
// interface ifc.
func (p *punchNet) public(short string, i int) (ns, ifc string) {
	ns = p.l.ns(short)
	_, ifc = p.l.link(p.inet, fmt.Sprintf("11.0.%d.1/24", i), ns, fmt.Sprintf("11.0.%d.2/24", i))
	p.l.sh("ip", "-n", ns, "route", "add", "default", "via", fmt.Sprintf("11.0.%d.1", i))
	return ns, ifc
}

// behind puts a host namespace behind a NAT of kind k with public address
// 11.0.<i>.2 and returns the host's namespace.
func (p *punchNet) behind(k natKind, i int) string {
	l := p.l
	nat, out := p.public(fmt.Sprintf("n%d", i), i)
	host := l.ns(fmt.Sprintf("h%d", i))
	lanIP := fmt.Sprintf("10.%d.0.100", i)
	l.link(nat, fmt.Sprintf("10.%d.0.1/24", i), host, lanIP+"/24")
	l.sh("ip", "-n", host, "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", i))
	l.sh("ip", "netns", "exec", nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	masq := []string{"ip", "netns", "exec", nat, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", fmt.Sprintf("10.%d.0.0/24", i), "-o", out, "-j", "MASQUERADE"}
	switch k {
	case natSym:
		masq = append(masq, "--random-fully")
	case natEI:
		l.sh("ip", "netns", "exec", nat, "iptables", "-t", "nat", "-A", "PREROUTING", "-i", out, "-p", "udp", "--dport", "4242", "-j", "DNAT", "--to-destination", lanIP+":4242")
	}
	l.sh(masq...)
	// A router's firewall drops what comes in unasked for itself (OpenWrt's
	// default for the WAN zone). Without it the first punch packet to
	// arrive, addressed to the router, leaves a conntrack entry behind
	// that makes the NAT give the host's own punch a different port.
	l.sh("ip", "netns", "exec", nat, "iptables", "-A", "INPUT", "-i", out, "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP")
	return host
}

// peerPath is what `p2pctl --json peers` says of one peer.
type peerPath struct {
	State, Path, Relay, Endpoint string
}

func (n *testNode) peerPath(peer string) (peerPath, error) {
	out, err := n.ctl("--json", "peers")
	if err != nil {
		return peerPath{}, err
	}
	var doc struct {
		Peers []struct {
			Name, ID string
			peerPath
		} `json:"peers"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return peerPath{}, fmt.Errorf("p2pctl --json peers: %v: %s", err, out)
	}
	for _, p := range doc.Peers {
		if p.Name == peer || p.ID == peer {
			return p.peerPath, nil
		}
	}
	return peerPath{}, fmt.Errorf("p2pctl --json peers: no peer %s: %s", peer, out)
}

// TestNetnsHolePunch: A and B sit behind two port-restricted NATs with
// public-looking addresses and know each other by ID only. A reaches B
// through the relay first; then hole punching (DCUtR) opens a direct path
// through both NATs, the overlay takes it, and p2pctl shows the peer
// direct, at B's public address. A transfer over it is byte-exact.
func TestNetnsHolePunch(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
	pn := newPunchNet(l)
	ha, hb := pn.behind(natPR, 1), pn.behind(natPR, 2)
	rel, _ := pn.public("rel", 100)
	dir, sum := blobDir(t, 1<<20)
	l.httpIn(hb, dir, 18080)

	r := nsNode(t, "relay", rel, "mdns = false\ndht = false\nrelay_service = true")
	relays := fmt.Sprintf("relays = [\"/ip4/%s/udp/4242/quic-v1/p2p/%s\"]", punchRelayIP, r.id)
	a := nsNode(t, "pa", ha, "mdns = false\ndht = false\n"+relays)
	b := nsNode(t, "pb", hb, "mdns = false\ndht = false\n"+relays)
	r.writeConfig(a.idPeer() + b.idPeer())
	// always_on: A keeps a session to B, so it dials the punched path as
	// soon as discovery reports it, not at the next use.
	a.writeConfig(alwaysOn(b) + forwardTo("pb"))
	b.writeConfig(a.idPeer() + filesService)
	r.start()
	b.start()
	a.start()
	start := time.Now()
	type result struct {
		seen []string
		last peerPath
	}
	polled := make(chan result, 1)
	go func() {
		seen, last := pollPaths(a, "pb", 45*time.Second)
		polled <- result{seen, last}
	}()
	// A uses B (the forward): with no address, the path is relayed.
	url := "http://127.0.0.1:18081/blob"
	got, err := l.curlIn(ha, url, 30*time.Second)
	if err != nil || got != sum {
		t.Errorf("first transfer: %v (byte-exact: %v)", err, got == sum)
	}
	res := <-polled
	seen, last := res.seen, res.last
	if last.Path != "direct" {
		t.Fatalf("a did not report b direct within 45 s (paths seen: %v, last %+v)\n--- a's log:\n%s\n--- b's log:\n%s", seen, last, a.log, b.log)
	}
	t.Logf("paths a reported for b: %s; direct %v after start, endpoint %s", strings.Join(seen, " → "), time.Since(start).Round(100*time.Millisecond), last.Endpoint)
	if seen[0] != "relayed" {
		t.Errorf("a's first path to b was %q, want relayed (b is behind a NAT and known by ID only)", seen[0])
	}
	if !strings.HasPrefix(last.Endpoint, "11.0.2.2:") {
		t.Errorf("direct endpoint %q, want b's NAT address 11.0.2.2", last.Endpoint)
	}
	got, err = l.curlIn(ha, url, 30*time.Second)
	if err != nil || got != sum {
		t.Fatalf("transfer over the punched path: %v (byte-exact: %v)", err, got == sum)
	}
	if p, err := a.peerPath("pb"); err != nil || p.Path != "direct" {
		t.Fatalf("after the transfer a reports b %+v (%v), want direct", p, err)
	}
}

// pollPaths polls n's `p2pctl --json peers` until it reports peer direct or
// timeout passes, and returns the distinct paths it reported while
// connected, in order, and the last answer.
func pollPaths(n *testNode, peer string, timeout time.Duration) (seen []string, last peerPath) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p, err := n.peerPath(peer)
		if err == nil {
			if p.State == "connected" && (len(seen) == 0 || seen[len(seen)-1] != p.Path) {
				seen = append(seen, p.Path)
			}
			last = p
			if p.Path == "direct" {
				return seen, last
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return seen, last
}

// alwaysOn is a [[peers]] entry with no address, kept connected.
func alwaysOn(n *testNode) string {
	return fmt.Sprintf("[[peers]]\nname = %q\nid = %q\nalways_on = true\n\n", n.name, n.id)
}
