package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The hole-punching measurement (-holepunch, root): for each pair of NAT
// kinds, two peers behind their own NATs, known to each other by peer ID
// only, reach each other through a relay; the figures are the share of
// trials in which the path becomes direct, and how long after the first use
// of the peer it does, both read from `p2pctl --json peers`.
//
// libp2p engages AutoNAT and hole punching only for addresses it counts as
// public (not RFC 1918, 100.64.0.0/10 or the documentation ranges), so the
// namespaces use 11.0.0.0/8, which is public to it and, inside isolated
// namespaces, reaches nothing real:
//
//	host i 10.<i>.0.100 ── NAT i 10.<i>.0.1 | 11.0.<i>.2 ── inet 11.0.<i>.1
//	relay 11.0.100.2 (relay_service), bootstrap 11.0.101.2 (DHT) ── inet
//
// Every NAT drops what comes in unasked for the router itself (a home
// router's WAN firewall): a Linux NAT that accepted it would keep a
// conntrack entry for the first punch packet to arrive and give the host's
// own punch a different port.
const (
	hpRelayIP    = "11.0.100.2"
	hpBootIP     = "11.0.101.2"
	hpPort       = 4242
	hpRelaySeg   = 100
	hpBootSeg    = 101
	hpRelayedMax = 30 * time.Second // for the first relayed report
)

// natKinds are the NATs measured, in RFC 4787 terms.
var natKinds = []struct{ name, desc string }{
	{"EI", "endpoint-independent mapping and filtering (full cone): MASQUERADE, and the node's port forwarded from anyone"},
	{"PR", "endpoint-independent mapping, address-and-port-dependent filtering (port-restricted cone): MASQUERADE"},
	{"SYM", "address-and-port-dependent mapping (symmetric): MASQUERADE --random-fully"},
}

// hpPairs are the NAT pairs measured.
var hpPairs = [][2]string{{"EI", "EI"}, {"EI", "PR"}, {"EI", "SYM"}, {"PR", "PR"}, {"PR", "SYM"}, {"SYM", "SYM"}}

// hpTrial is one trial's outcome.
type hpTrial struct {
	Pair     string  `json:"pair"`
	Outcome  string  `json:"outcome"`              // "direct", "relayed" or "error"
	Seconds  float64 `json:"seconds,omitempty"`    // from the first use (ping) to direct
	Endpoint string  `json:"endpoint,omitempty"`   // the direct endpoint
	Reason   string  `json:"reason,omitempty"`     // why it stayed relayed, from the daemons' logs
	Error    string  `json:"error,omitempty"`      // a trial that could not run
	Relayed  bool    `json:"relayed_seen"`         // a report said relayed before direct
	Relay    string  `json:"relay_peer,omitempty"` // the relay's peer ID on the relayed path
}

// hpLab is one trial's namespaces.
type hpLab struct {
	prefix string
	spaces []string
	links  int
}

func (l *hpLab) ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("bench: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *hpLab) in(ns string, args ...string) error {
	return l.ip(append([]string{"netns", "exec", ns}, args...)...)
}

func (l *hpLab) ns(short string) (string, error) {
	name := l.prefix + short
	if err := l.ip("netns", "add", name); err != nil {
		return "", err
	}
	l.spaces = append(l.spaces, name)
	return name, l.ip("-n", name, "link", "set", "lo", "up")
}

// link joins a and b with a veth pair, addresses both ends and returns
// b's interface.
func (l *hpLab) link(a, aAddr, b, bAddr string) (string, error) {
	l.links++
	aIf, bIf := shortName(l.prefix, fmt.Sprintf("x%da", l.links)), shortName(l.prefix, fmt.Sprintf("x%db", l.links))
	for _, s := range [][]string{
		{"link", "add", aIf, "netns", a, "type", "veth", "peer", "name", bIf, "netns", b},
		{"-n", a, "addr", "add", aAddr, "dev", aIf},
		{"-n", b, "addr", "add", bAddr, "dev", bIf},
		{"-n", a, "link", "set", aIf, "up"},
		{"-n", b, "link", "set", bIf, "up"},
	} {
		if err := l.ip(s...); err != nil {
			return "", err
		}
	}
	return bIf, nil
}

// public attaches a namespace at 11.0.<i>.2 to the internet namespace.
func (l *hpLab) public(inet, short string, i int) (ns, ifc string, err error) {
	if ns, err = l.ns(short); err != nil {
		return "", "", err
	}
	if ifc, err = l.link(inet, fmt.Sprintf("11.0.%d.1/24", i), ns, fmt.Sprintf("11.0.%d.2/24", i)); err != nil {
		return "", "", err
	}
	return ns, ifc, l.ip("-n", ns, "route", "add", "default", "via", fmt.Sprintf("11.0.%d.1", i))
}

// behind makes host i behind a NAT of kind and returns the host's namespace.
func (l *hpLab) behind(inet, kind string, i int) (string, error) {
	nat, out, err := l.public(inet, fmt.Sprintf("n%d", i), i)
	if err != nil {
		return "", err
	}
	host, err := l.ns(fmt.Sprintf("h%d", i))
	if err != nil {
		return "", err
	}
	lan := fmt.Sprintf("10.%d.0.100", i)
	if _, err := l.link(nat, fmt.Sprintf("10.%d.0.1/24", i), host, lan+"/24"); err != nil {
		return "", err
	}
	masq := []string{"iptables", "-t", "nat", "-A", "POSTROUTING", "-s", fmt.Sprintf("10.%d.0.0/24", i), "-o", out, "-j", "MASQUERADE"}
	steps := [][]string{{"sysctl", "-qw", "net.ipv4.ip_forward=1"}}
	switch kind {
	case "SYM":
		masq = append(masq, "--random-fully")
	case "EI":
		steps = append(steps, []string{"iptables", "-t", "nat", "-A", "PREROUTING", "-i", out, "-p", "udp", "--dport", fmt.Sprint(hpPort), "-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", lan, hpPort)})
	}
	steps = append(steps, masq, []string{"iptables", "-A", "INPUT", "-i", out, "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP"})
	for _, s := range steps {
		if err := l.in(nat, s...); err != nil {
			return "", err
		}
	}
	return host, l.ip("-n", host, "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", i))
}

func (l *hpLab) cleanup() {
	for _, n := range l.spaces {
		exec.Command("ip", "netns", "del", n).Run()
	}
}

// hpNode is a daemon of the measurement, in a namespace on port hpPort.
type hpNode struct {
	name, ns, dir, id string
	level             string // [log] level: at least info, for the reason lines
	proc              *proc
}

// newHPNode makes the node's key and reads its peer ID.
func (r *runner) newHPNode(dir, name, ns string) (*hpNode, error) {
	n := &hpNode{name: name, ns: ns, dir: filepath.Join(dir, name), level: "info"}
	if r.o.logLevel == "debug" {
		n.level = "debug"
	}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return nil, err
	}
	if err := n.write("", ""); err != nil {
		return nil, err
	}
	id, err := r.initKey(r.ctx, n.config(), name)
	if err != nil {
		return nil, err
	}
	n.id = id
	return n, nil
}

func (n *hpNode) config() string { return filepath.Join(n.dir, "p2pd.toml") }
func (n *hpNode) socket() string { return filepath.Join(n.dir, "p2pd.sock") }
func (n *hpNode) log() string    { return filepath.Join(n.dir, "log") }

// write writes the node's config: its [discovery] body and the rest.
func (n *hpNode) write(discovery, extra string) error {
	if discovery == "" {
		discovery = "mdns = false\ndht = false"
	}
	cfg := fmt.Sprintf("[node]\nname = %q\nkey_file = \"identity.key\"\nlisten = [\"0.0.0.0:%d\"]\ncontrol_socket = \"p2pd.sock\"\n\n[discovery]\n%s\n\n[log]\nlevel = %q\n\n%s",
		n.name, hpPort, discovery, n.level, extra)
	return os.WriteFile(n.config(), []byte(cfg), 0o600)
}

func (n *hpNode) peer(alwaysOn bool) string {
	return fmt.Sprintf("[[peers]]\nname = %q\nid = %q\nalways_on = %v\n\n", n.name, n.id, alwaysOn)
}

func (r *runner) startHPNode(n *hpNode) error {
	p, err := r.procs.start("p2pd "+n.name, n.log(), []string{"ip", "netns", "exec", n.ns}, []string{r.p2pd, "run", "--config", n.config()}, false)
	if err != nil {
		return err
	}
	n.proc = p
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(n.socket()); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		if !p.alive() {
			return fmt.Errorf("bench: p2pd %s exited: %s", n.name, tail(n.log(), 5))
		}
	}
	return fmt.Errorf("bench: p2pd %s made no control socket in 15 s: %s", n.name, tail(n.log(), 5))
}

// hpPath is what `p2pctl --json peers` says of one peer.
type hpPath struct {
	Name, State, Path, Relay, Endpoint string
}

func (r *runner) hpPeerPath(n *hpNode, peer string) (hpPath, error) {
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.p2pctl, "--socket", n.socket(), "--json", "peers").Output()
	if err != nil {
		return hpPath{}, fmt.Errorf("bench: p2pctl --json peers on %s: %w", n.name, err)
	}
	var doc struct {
		Peers []hpPath `json:"peers"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return hpPath{}, fmt.Errorf("bench: p2pctl --json peers on %s: %v", n.name, err)
	}
	for _, p := range doc.Peers {
		if p.Name == peer {
			return p, nil
		}
	}
	return hpPath{}, fmt.Errorf("bench: p2pctl --json peers on %s: no peer %s", n.name, peer)
}

// holePunchRun measures every NAT pair o.holepunchReps times.
func (r *runner) holePunchRun() ([]hpTrial, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("bench: -holepunch needs root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("bench: -holepunch needs %s", tool)
		}
	}
	var trials []hpTrial
	for rep := range r.o.holepunchReps {
		for _, pair := range hpPairs {
			if r.ctx.Err() != nil {
				return trials, r.ctx.Err()
			}
			if r.o.holepunchOnly != "" && !listHas(r.o.holepunchOnly, pair[0]+"-"+pair[1]) {
				continue
			}
			t := r.holePunchTrial(pair[0], pair[1], rep)
			r.logf("  holepunch  %-7s trial %d: %s", t.Pair, rep+1, t.describe())
			trials = append(trials, t)
		}
	}
	return trials, nil
}

func (t hpTrial) describe() string {
	switch t.Outcome {
	case "direct":
		seen := "relayed, then "
		if !t.Relayed {
			seen = "relayed too briefly to be seen, "
		}
		return fmt.Sprintf("%sdirect %.1f s after the first use, at %s", seen, t.Seconds, t.Endpoint)
	case "relayed":
		return "stayed relayed: " + t.Reason
	}
	return "error: " + t.Error
}

// holePunchTrial builds a fresh lab and daemons for one pair and watches
// A's view of B.
func (r *runner) holePunchTrial(kindA, kindB string, rep int) hpTrial {
	t := hpTrial{Pair: kindA + "-" + kindB, Outcome: "error"}
	l := &hpLab{prefix: r.o.nsPrefix + "h"}
	defer l.cleanup()
	dir := filepath.Join(r.work, "holepunch", fmt.Sprintf("%s-%d", t.Pair, rep+1))
	var procs []*proc
	defer func() { stopProcs(procs) }() // before the namespaces go
	fail := func(err error) hpTrial { t.Error = err.Error(); return t }

	inet, err := l.ns("inet")
	if err == nil {
		err = l.in(inet, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	var relNS, bootNS, hostA, hostB string
	if err == nil {
		relNS, _, err = l.public(inet, "rel", hpRelaySeg)
	}
	if err == nil {
		bootNS, _, err = l.public(inet, "boot", hpBootSeg)
	}
	if err == nil {
		hostA, err = l.behind(inet, kindA, 1)
	}
	if err == nil {
		hostB, err = l.behind(inet, kindB, 2)
	}
	if err != nil {
		return fail(err)
	}
	rel, err := r.newHPNode(dir, "relay", relNS)
	if err != nil {
		return fail(err)
	}
	boot, err := r.newHPNode(dir, "boot", bootNS)
	if err != nil {
		return fail(err)
	}
	a, err := r.newHPNode(dir, "pa", hostA)
	if err != nil {
		return fail(err)
	}
	b, err := r.newHPNode(dir, "pb", hostB)
	if err != nil {
		return fail(err)
	}
	// A and B know each other by ID; the relay and the bootstrap node are
	// trusted peers of theirs (and they of them), as a user's own relay is.
	disc := fmt.Sprintf("mdns = false\ndht = true\nbootstrap = [\"/ip4/%s/udp/%d/quic-v1/p2p/%s\"]\nrelays = [\"/ip4/%s/udp/%d/quic-v1/p2p/%s\"]",
		hpBootIP, hpPort, boot.id, hpRelayIP, hpPort, rel.id)
	for _, w := range []struct {
		n          *hpNode
		disc, rest string
	}{
		{rel, "mdns = false\ndht = false\nrelay_service = true", a.peer(false) + b.peer(false)},
		{boot, "mdns = false\ndht = true", a.peer(false) + b.peer(false)},
		{a, disc, b.peer(true) + rel.peer(false) + boot.peer(false)},
		{b, disc, a.peer(false) + rel.peer(false) + boot.peer(false)},
	} {
		if err := w.n.write(w.disc, w.rest); err != nil {
			return fail(err)
		}
	}
	for _, n := range []*hpNode{rel, boot, b, a} {
		if err := r.startHPNode(n); err != nil {
			return fail(err)
		}
		procs = append(procs, n.proc)
	}
	return r.watchUpgrade(t, a, b)
}

// watchUpgrade pings B from A every second (so that A uses the peer) and
// polls A's `p2pctl --json peers` until B is direct or o.holepunchWait has
// passed since B was first reported relayed. The time is counted from the
// first ping: on these links a punch can finish before the next poll.
func (r *runner) watchUpgrade(t hpTrial, a, b *hpNode) hpTrial {
	start := time.Now()
	var relayedAt, firstPing, lastPing time.Time
	var last hpPath
	for r.ctx.Err() == nil {
		if time.Since(lastPing) > time.Second {
			lastPing = time.Now()
			if firstPing.IsZero() {
				firstPing = lastPing
			}
			ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
			exec.CommandContext(ctx, r.p2pctl, "--socket", a.socket(), "ping", b.name).Run()
			cancel()
		}
		p, err := r.hpPeerPath(a, b.name)
		if err == nil {
			last = p
		}
		switch {
		case p.Path == "direct":
			t.Outcome, t.Endpoint = "direct", p.Endpoint
			t.Relayed, t.Seconds = !relayedAt.IsZero(), time.Since(firstPing).Seconds()
			return t
		case p.Path == "relayed" && relayedAt.IsZero():
			relayedAt, t.Relay = time.Now(), p.Relay
		}
		if relayedAt.IsZero() && time.Since(start) > hpRelayedMax {
			t.Error = fmt.Sprintf("no relayed path within %v (last: %+v): %s", hpRelayedMax, last, tail(a.log(), 3))
			return t
		}
		if !relayedAt.IsZero() && time.Since(relayedAt) > r.o.holepunchWait {
			t.Outcome = "relayed"
			t.Reason = punchReason(a, b)
			return t
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Error = "interrupted"
	return t
}

// punchReason is the reason a daemon logged for staying relayed, with the
// daemon's name.
func punchReason(nodes ...*hpNode) string {
	for _, n := range nodes {
		b, _ := os.ReadFile(n.log())
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, "staying relayed") {
				continue
			}
			if _, after, ok := strings.Cut(line, "reason="); ok {
				return n.name + ": " + strings.Trim(strings.SplitN(after, `" `, 2)[0], `"`)
			}
		}
	}
	return "no hole punch was reported (none was tried)"
}

// holePunchReport is the measurement's section in Markdown.
func holePunchReport(trials []hpTrial, wait time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Hole punching (relayed → direct)\n\n")
	fmt.Fprintf(&b, "Per NAT pair: trials; how many ended direct within %v of the first relayed report; in how many of those a report said relayed first (a punch can finish between two polls); and the time from the first use of the peer (a `p2pctl ping` through the relay) to the direct path (median, min–max, seconds). Everything is read from `p2pctl --json peers` on A, polled every 100 ms.\n\n", wait)
	b.WriteString("| A – B | trials | direct | share | relayed seen first | median s | min–max s | stayed relayed because |\n|---|---|---|---|---|---|---|---|\n")
	for _, pair := range hpPairs {
		name := pair[0] + "-" + pair[1]
		var n, direct, seen int
		var secs []float64
		var reasons []string
		for _, t := range trials {
			if t.Pair != name {
				continue
			}
			n++
			switch t.Outcome {
			case "direct":
				direct++
				secs = append(secs, t.Seconds)
				if t.Relayed {
					seen++
				}
			case "relayed":
				if !slices.Contains(reasons, t.Reason) {
					reasons = append(reasons, t.Reason)
				}
			default:
				reasons = append(reasons, "error: "+t.Error)
			}
		}
		if n == 0 {
			continue
		}
		med, span := "–", "–"
		if len(secs) > 0 {
			slices.Sort(secs)
			med = fmt.Sprintf("%.1f", median(secs))
			span = fmt.Sprintf("%.1f–%.1f", secs[0], secs[len(secs)-1])
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f %% | %d | %s | %s | %s |\n", name, n, direct, 100*float64(direct)/float64(n), seen, med, span, strings.Join(reasons, "; "))
	}
	b.WriteString("\nNAT kinds:\n\n")
	for _, k := range natKinds {
		fmt.Fprintf(&b, "- %s: %s.\n", k.name, k.desc)
	}
	return b.String()
}

// holePunchOnly runs the measurement and writes holepunch-results.md and
// holepunch-results.json into o.out.
func (r *runner) holePunchOnly() error {
	trials, err := r.holePunchRun()
	if err != nil && len(trials) == 0 {
		return err
	}
	md := fmt.Sprintf("# p2pd hole punching\n\n%s\nCommand: `%s`\n\n%s", r.machineLine(), r.command, holePunchReport(trials, r.o.holepunchWait))
	js, jerr := json.MarshalIndent(map[string]any{"machine": r.machine, "command": r.command, "wait_seconds": r.o.holepunchWait.Seconds(), "trials": trials}, "", "  ")
	if jerr != nil {
		return jerr
	}
	if werr := os.MkdirAll(r.o.out, 0o755); werr != nil {
		return werr
	}
	path := filepath.Join(r.o.out, "holepunch-results.md")
	if werr := os.WriteFile(path, []byte(md), 0o644); werr != nil {
		return werr
	}
	if werr := os.WriteFile(filepath.Join(r.o.out, "holepunch-results.json"), append(js, '\n'), 0o644); werr != nil {
		return werr
	}
	fmt.Print(md)
	r.logf("wrote %s and holepunch-results.json", path)
	return err
}

func (r *runner) machineLine() string {
	m := r.machine
	return fmt.Sprintf("Machine: %d cores, %s, kernel %s, %s; %s.\n", m.NProc, m.CPU, m.Kernel, m.MemTotal, m.Go)
}
