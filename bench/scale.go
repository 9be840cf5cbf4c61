package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The scale measurement (`bench -scale N`, bench/run.sh -scale N;
// root): N daemons, each in its own namespace (scale_lab.go), DHT only
// (mdns = false), node s0 the one bootstrap node, every node trusting every
// other by peer ID alone. Sessions are on demand, so what an idle overlay
// costs is discovery. The figures, from the outside only (p2pctl, /proc,
// the control socket's pprof, the router's link counters):
//
//  1. idle: once the last node is up, nobody talks for -scale-idle; then
//     sessions per node, RSS, CPU % over the window, goroutines, and the
//     bytes and packets each node's link carried per minute;
//  2. cold first contact: `p2pctl --json ping PEER --timeout 30s` from a
//     random node to a random peer, a pair that never held a session, and
//     at once a second (warm) ping, which is what p2pctl itself costs;
//  3. the same after the bootstrap node is killed (SIGKILL).
const (
	scaleBootstrap   = 0 // index of the bootstrap node
	scalePort        = 4242
	scalePingTimeout = 30 * time.Second
	scaleSocketWait  = 30 * time.Second
	scaleWorkers     = 4       // parallel p2pctl and key generation
	scaleMemFloorKiB = 1 << 21 // stop starting nodes below 2 GiB available
	scaleMemPerNode  = 64 << 10
)

// scaleNode is one daemon of the measurement.
type scaleNode struct {
	i    int
	name string
	ns   string
	ip   string
	dir  string
	id   string
	proc *proc
}

func (n *scaleNode) config() string { return filepath.Join(n.dir, "p2pd.toml") }
func (n *scaleNode) socket() string { return filepath.Join(n.dir, "p2pd.sock") }

// scaleRequested reports whether the arguments ask for the scale
// measurement (-scale N), which runs instead of the figures.
func scaleRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "scale" {
			return true
		}
	}
	return false
}

// runScale is `bench -scale N`: the scale measurement alone.
func runScale(args []string) error {
	o, err := parseOptions(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("bench: -scale needs root (network namespaces)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	r, err := newRunner(ctx, o)
	if err != nil {
		return err
	}
	cleanup, err := r.scratch(args, "p2pd-scale-")
	if err != nil {
		return err
	}
	defer cleanup()
	r.machine = describeMachine(raiseNoFile(1 << 16))
	r.logf("scratch directory %s", r.work)
	res, err := r.scaleRun()
	r.machine.LoadEnd = loadAvg()
	if res == nil || len(res.Nodes) == 0 {
		return err // nothing measured: keep the last report
	}
	if werr := r.writeScale(res); werr != nil {
		return errors.Join(err, werr)
	}
	if o.keep {
		r.logf("kept %s", r.work)
	}
	return err
}

// scaleRun builds the lab, starts the nodes and takes the figures. Every
// process is stopped and every namespace deleted before it returns.
func (r *runner) scaleRun() (*scaleResult, error) {
	ctx, cancel := context.WithTimeout(r.ctx, r.o.scaleMax)
	defer cancel()
	n := r.o.scale
	res := &scaleResult{N: n, IdleSeconds: r.o.scaleIdle.Seconds()}
	t0 := time.Now()
	lab, err := newScaleLab(r.o.nsPrefix, n)
	if err != nil {
		return nil, err
	}
	defer lab.cleanup()
	defer r.procs.stopAll() // before the namespaces go
	r.logf("scale: %d namespaces and links in %.1f s", n+1, time.Since(t0).Seconds())

	nodes, err := r.scaleKeys(ctx, lab)
	if err != nil {
		return nil, err
	}
	if err := scaleConfigs(nodes, r.o.logLevel); err != nil {
		return nil, err
	}
	t0 = time.Now()
	up, err := r.scaleStart(ctx, nodes)
	res.Started, res.StartSeconds = len(up), time.Since(t0).Seconds()
	r.logf("scale: %d of %d nodes up in %.1f s", len(up), n, res.StartSeconds)
	if err != nil {
		res.note("stopped starting nodes: %v", err)
		if len(up) < 2 {
			return res, err
		}
	}

	r.logf("scale: idle for %s", r.o.scaleIdle)
	sessions, err := r.scaleIdle(ctx, lab, up, res)
	if err != nil {
		res.note("idle figures: %v", err)
		return res, err
	}
	used := map[[2]int]bool{}
	for from, peers := range sessions {
		for _, to := range peers {
			used[pairKey(from, to)] = true
		}
	}
	r.logf("scale: %d cold first contacts", r.o.scaleContacts)
	res.Cold = r.scaleContacts(ctx, up, used, time.Time{})
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	boot := up[0]
	if boot.i != scaleBootstrap {
		return res, fmt.Errorf("bench: the bootstrap node did not start")
	}
	boot.proc.cmd.Process.Kill()
	<-boot.proc.exited
	killed := time.Now()
	r.logf("scale: killed the bootstrap node; %d cold first contacts", r.o.scaleContacts)
	res.AfterKill = r.scaleContacts(ctx, up, used, killed)
	res.Alive = 0
	for _, nd := range up[1:] {
		if nd.proc.alive() {
			res.Alive++
		}
	}
	return res, ctx.Err()
}

func pairKey(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}

// scaleKeys makes each node's directory, minimal config and key, and reads
// its peer ID, with `p2pd init` and `p2pd id` as a user would.
func (r *runner) scaleKeys(ctx context.Context, lab *scaleLab) ([]*scaleNode, error) {
	nodes := make([]*scaleNode, len(lab.nodes))
	for i, ns := range lab.nodes {
		ip, _ := scaleAddrs(i)
		nodes[i] = &scaleNode{i: i, name: fmt.Sprintf("s%d", i), ns: ns, ip: ip, dir: filepath.Join(r.work, fmt.Sprintf("s%d", i))}
	}
	err := forEach(ctx, nodes, func(n *scaleNode) error {
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			return err
		}
		if err := n.writeConfig("", "warn", ""); err != nil {
			return err
		}
		var err error
		n.id, err = r.initKey(ctx, n.config(), n.name)
		return err
	})
	return nodes, err
}

// forEach runs f over the items with scaleWorkers in parallel and returns
// the first error; it stops handing out items after one.
func forEach[T any](ctx context.Context, items []T, f func(T) error) error {
	var mu sync.Mutex // guards next and first
	next := 0
	var first error
	var wg sync.WaitGroup
	for range scaleWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next == len(items) || first != nil || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				n := items[next]
				next++
				mu.Unlock()
				if err := f(n); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// writeConfig writes the node's config: DHT only, with the given bootstrap
// multiaddr ("" for none) and [[peers]].
func (n *scaleNode) writeConfig(bootstrap, level, peers string) error {
	disc := "mdns = false\ndht = false\n"
	if peers != "" {
		disc = "mdns = false\ndht = true\n"
		if bootstrap != "" {
			disc += fmt.Sprintf("bootstrap = [%q]\n", bootstrap)
		}
	}
	cfg := fmt.Sprintf("[node]\nname = %q\nkey_file = \"identity.key\"\nlisten = [\"%s:%d\"]\ncontrol_socket = \"p2pd.sock\"\n\n[discovery]\n%s\n[log]\nlevel = %q\n\n%s",
		n.name, n.ip, scalePort, disc, level, peers)
	return os.WriteFile(n.config(), []byte(cfg), 0o600)
}

// scaleConfigs gives every node every other as a peer by ID alone, and the
// bootstrap node's multiaddr.
func scaleConfigs(nodes []*scaleNode, level string) error {
	b := nodes[scaleBootstrap]
	boot := fmt.Sprintf("/ip4/%s/udp/%d/quic-v1/p2p/%s", b.ip, scalePort, b.id)
	for _, n := range nodes {
		var peers strings.Builder
		for _, p := range nodes {
			if p != n {
				peers.WriteString(peerTOML(p.name, p.id, ""))
			}
		}
		bs := boot
		if n == b {
			bs = ""
		}
		if err := n.writeConfig(bs, level, peers.String()); err != nil {
			return err
		}
	}
	return nil
}

// scaleStart starts the bootstrap node, then the others in batches, each
// batch waiting for its control sockets. It returns the nodes that came up,
// the bootstrap node first, and why it stopped early if it did.
func (r *runner) scaleStart(ctx context.Context, nodes []*scaleNode) ([]*scaleNode, error) {
	var up []*scaleNode
	batch := max(1, r.o.scaleBatch)
	for lo := 0; lo < len(nodes); {
		hi := min(len(nodes), lo+batch)
		if lo == 0 {
			hi = 1 // the bootstrap node alone, first
		}
		if avail := memAvailableKiB(); avail > 0 && avail < scaleMemFloorKiB+int64(hi-lo)*scaleMemPerNode {
			return up, fmt.Errorf("bench: memory: %d MiB available, below the floor of %d MiB plus %d MiB per node", avail>>10, scaleMemFloorKiB>>10, scaleMemPerNode>>10)
		}
		for _, n := range nodes[lo:hi] {
			p, err := r.procs.start("p2pd "+n.name, filepath.Join(n.dir, "log"), []string{"ip", "netns", "exec", n.ns},
				[]string{r.p2pd, "run", "--config", n.config()}, false)
			if err != nil {
				return up, err
			}
			n.proc = p
		}
		for _, n := range nodes[lo:hi] {
			if err := waitSocket(ctx, n); err != nil {
				return up, err
			}
			up = append(up, n)
		}
		if lo > 0 && (hi/batch)%5 == 0 {
			r.logf("scale: %d nodes up", len(up))
		}
		lo = hi
	}
	return up, nil
}

func waitSocket(ctx context.Context, n *scaleNode) error {
	deadline := time.Now().Add(scaleSocketWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if fi, err := os.Stat(n.socket()); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		if !n.proc.alive() {
			return fmt.Errorf("bench: p2pd %s exited: %s", n.name, tail(n.proc.logPath, 5))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("bench: p2pd %s made no control socket in %s: %s", n.name, scaleSocketWait, tail(n.proc.logPath, 5))
}

// memAvailableKiB is MemAvailable from /proc/meminfo, 0 if unknown.
func memAvailableKiB() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var v int64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// pickPairs draws k pairs of distinct nodes (neither the bootstrap node)
// that have not been used or held a session, and marks them used.
func pickPairs(up []*scaleNode, used map[[2]int]bool, k int) [][2]*scaleNode {
	var pairs [][2]*scaleNode
	others := up[1:]
	for tries := 0; len(pairs) < k && tries < 100*k; tries++ {
		a, b := others[rand.IntN(len(others))], others[rand.IntN(len(others))]
		if a == b || used[pairKey(a.i, b.i)] {
			continue
		}
		used[pairKey(a.i, b.i)] = true
		pairs = append(pairs, [2]*scaleNode{a, b})
	}
	return pairs
}
