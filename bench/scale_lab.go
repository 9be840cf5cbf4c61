package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// scaleLab is the scale measurement's network: one router namespace and
// one namespace per node, each joined to the router by its own veth pair
// (a /30):
//
//	node i  eth0 10.80.<i/64>.<4(i%64)+2>/30 ── n<i> 10.80.<i/64>.<4(i%64)+1>  router
//
// Linux keeps one neighbour table for every namespace, with its limits
// (gc_thresh1-3: 128, 512, 1024) settable only in the root namespace.
// On one bridge segment each node would hold an entry for every peer it
// talks to, and 200 nodes overflow 1,024; routed point-to-point links hold
// one entry per node (its router) and one per link in the router, 2N in
// all. Nothing lives in the root namespace: deleting the namespaces
// deletes every link.
type scaleLab struct {
	prefix string
	router string
	nodes  []string // node namespaces, by index
}

const scaleMaxNodes = 64 * 256

// scaleAddrs are node i's address and its router's, on their /30.
func scaleAddrs(i int) (node, router string) {
	base := fmt.Sprintf("10.80.%d.", i/64)
	host := 4 * (i % 64)
	return base + strconv.Itoa(host+2), base + strconv.Itoa(host+1)
}

// batch runs ip's batch mode with the given lines, in namespace ns ("" for
// the root namespace).
func ipBatch(ns string, lines []string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newScaleLab creates the router and n node namespaces. On error what was
// made is deleted.
func newScaleLab(prefix string, n int) (*scaleLab, error) {
	if n < 2 || n > scaleMaxNodes {
		return nil, fmt.Errorf("bench: -scale %d: want 2 to %d nodes", n, scaleMaxNodes)
	}
	l := &scaleLab{prefix: prefix, router: prefix + "sr"}
	adds := []string{"netns add " + l.router}
	for i := range n {
		ns := fmt.Sprintf("%ss%d", prefix, i)
		l.nodes = append(l.nodes, ns)
		adds = append(adds, "netns add "+ns)
	}
	if err := ipBatch("", adds); err != nil {
		l.cleanup()
		return nil, err
	}
	links := []string{"link set lo up"}
	for i, ns := range l.nodes {
		_, rIP := scaleAddrs(i)
		dev := "n" + strconv.Itoa(i)
		links = append(links,
			fmt.Sprintf("link add %s type veth peer name eth0 netns %s", dev, ns),
			fmt.Sprintf("addr add %s/30 dev %s", rIP, dev),
			"link set "+dev+" up")
	}
	if err := ipBatch(l.router, links); err != nil {
		l.cleanup()
		return nil, err
	}
	if out, err := exec.Command("ip", "netns", "exec", l.router, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		l.cleanup()
		return nil, fmt.Errorf("bench: ip_forward in %s: %v: %s", l.router, err, strings.TrimSpace(string(out)))
	}
	for i, ns := range l.nodes {
		nIP, rIP := scaleAddrs(i)
		if err := ipBatch(ns, []string{
			"link set lo up",
			fmt.Sprintf("addr add %s/30 dev eth0", nIP),
			"link set eth0 up",
			"route add default via " + rIP,
		}); err != nil {
			l.cleanup()
			return nil, err
		}
	}
	return l, nil
}

// cleanup deletes every namespace of the lab; safe to call more than once.
func (l *scaleLab) cleanup() {
	var lines []string
	for _, ns := range append([]string{l.router}, l.nodes...) {
		lines = append(lines, "netns del "+ns)
	}
	// -force: go on past a namespace that is already gone.
	cmd := exec.Command("ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	cmd.Run()
	l.nodes = nil
}

// linkCount is what crossed one router link, from the router's side: rx
// is what the node sent, tx what it received.
type linkCount struct {
	rxBytes, rxPackets, txBytes, txPackets int64
}

// counts reads the router's /proc/net/dev: node index → its link's counters.
func (l *scaleLab) counts() (map[int]linkCount, error) {
	out, err := exec.Command("ip", "netns", "exec", l.router, "cat", "/proc/net/dev").Output()
	if err != nil {
		return nil, fmt.Errorf("bench: /proc/net/dev in %s: %w", l.router, err)
	}
	m := map[int]linkCount{}
	for _, line := range strings.Split(string(out), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		idx, ok := strings.CutPrefix(strings.TrimSpace(name), "n")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(idx)
		f := strings.Fields(rest)
		if err != nil || len(f) < 10 {
			continue
		}
		v := make([]int64, 10)
		for k := range v {
			v[k], _ = strconv.ParseInt(f[k], 10, 64)
		}
		m[i] = linkCount{rxBytes: v[0], rxPackets: v[1], txBytes: v[8], txPackets: v[9]}
	}
	return m, nil
}
