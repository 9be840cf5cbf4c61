package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pd/p2pd/bench/attack"
)

// attackBin is bench/attack's command, built once next to p2pd.
var attackBin struct {
	once sync.Once
	path string
	err  error
}

func buildAttack(t *testing.T) string {
	t.Helper()
	attackBin.once.Do(func() {
		attackBin.path = filepath.Join(filepath.Dir(bins.p2pd), "p2pd-attack")
		out, err := exec.Command("go", "build", "-o", attackBin.path, "../bench/attack/cmd/p2pd-attack").CombinedOutput()
		if err != nil {
			attackBin.err = fmt.Errorf("building p2pd-attack: %v\n%s", err, out)
		}
	})
	if attackBin.err != nil {
		t.Fatal(attackBin.err)
	}
	return attackBin.path
}

// attackLab is the topology of the attack tests: a router joining the
// victim (10.71.0.2), the attacker (10.72.0.2) and the trusted peer
// (10.73.0.2), each on its own /24. The victim trusts the peer by ID with
// no address, so sessions come only from the peer dialing in. Forged
// sources of 10.99.0.0/16 are routed back towards the attacker, whose veth
// counts the victim's answers to them and drops them.
type attackLab struct {
	*lab
	bin            string
	victim         *testNode
	router         string
	attacker, peer string // namespaces
	attackerIf     string // the attacker's veth
	trustedKey     string // key file of the trusted peer
	trustedID      string
}

const (
	victimAddr    = "10.71.0.2:4242"
	attackerIP    = "10.72.0.2"
	trustedIP     = "10.73.0.2"
	forgedSources = "10.99.0.0/16"
	spreadSources = "10.100.0.0/16"
)

// newAttackLab builds the topology and starts the victim with the given
// [discovery] body.
func newAttackLab(t *testing.T, discovery string) *attackLab {
	l := newLab(t)
	bin := buildAttack(t)
	router, hosts := l.routed("v", "a", "p")
	al := &attackLab{lab: l, bin: bin, router: router, attacker: hosts["a"], peer: hosts["p"]}
	al.attackerIf = vethOf(t, al.attacker)
	l.sh("ip", "-n", router, "route", "add", forgedSources, "via", attackerIP)
	trusted := newNode(t, "trusted") // its key only; never started
	al.trustedKey, al.trustedID = filepath.Join(trusted.dir, "identity.key"), trusted.id
	al.victim = nsNode(t, "victim", hosts["v"], discovery)
	al.victim.writeConfig(trusted.idPeer())
	al.victim.start()
	return al
}

// vethOf is the name of the one veth in ns.
func vethOf(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatalf("ip link in %s: %v", ns, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		t.Fatalf("no veth in %s: %q", ns, out)
	}
	name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
	return name
}

// rxCount is the number of packets and bytes received on dev in ns.
func rxCount(t *testing.T, ns, dev string) (packets, bytes int64) {
	t.Helper()
	out, err := exec.Command("ip", "-j", "-s", "-n", ns, "link", "show", "dev", dev).Output()
	if err != nil {
		t.Fatalf("ip -s link in %s: %v", ns, err)
	}
	var doc []struct {
		Stats64 struct {
			RX struct{ Packets, Bytes int64 } `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc) != 1 {
		t.Fatalf("ip -s link in %s: %q: %v", ns, out, err)
	}
	return doc[0].Stats64.RX.Packets, doc[0].Stats64.RX.Bytes
}

// addSources adds n addresses to the attacker's veth and returns them in
// p2pd-attack's -sources form: 10.72.0.10 and up, all in the attacker's
// /24, or with spread one in each of n /24s (10.100.<i>.1, routed to the
// attacker by the router), so that only the victim's global budget, not a
// per-prefix one, stands in their way.
func (al *attackLab) addSources(n int, spread bool) string {
	if !spread {
		for i := range n {
			al.sh("ip", "-n", al.attacker, "addr", "add", fmt.Sprintf("10.72.0.%d/24", 10+i), "dev", al.attackerIf)
		}
		return fmt.Sprintf("10.72.0.10+%d", n)
	}
	al.sh("ip", "-n", al.router, "route", "add", spreadSources, "via", attackerIP)
	list := make([]string, n)
	for i := range n {
		list[i] = fmt.Sprintf("10.100.%d.1", i)
		al.sh("ip", "-n", al.attacker, "addr", "add", list[i]+"/32", "dev", al.attackerIf)
	}
	return strings.Join(list, ",")
}

// attackProc is one p2pd-attack process in a namespace.
type attackProc struct {
	cmd     *exec.Cmd
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	mu      sync.Mutex // guards stderr, written by the scanner
	started chan struct{}
	scanned chan struct{}
}

// run starts p2pd-attack in ns and waits until it reports that the attack
// has begun.
func (al *attackLab) run(ns string, args ...string) *attackProc {
	al.t.Helper()
	p := &attackProc{started: make(chan struct{}), scanned: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, al.bin}, args...)...)
	p.cmd.Stdout = &p.stdout
	se, err := p.cmd.StderrPipe()
	if err != nil {
		al.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		al.t.Fatal(err)
	}
	go p.scan(se)
	al.t.Cleanup(func() { p.cmd.Process.Kill(); p.wait() })
	select {
	case <-p.started:
	case <-p.scanned:
		al.t.Fatalf("p2pd-attack %s ended before it started: %s", args[0], p.errText())
	case <-time.After(60 * time.Second):
		al.t.Fatalf("p2pd-attack %s did not start in 60 s: %s", args[0], p.errText())
	}
	return p
}

func (p *attackProc) scan(r io.Reader) {
	defer close(p.scanned)
	sc := bufio.NewScanner(r)
	once := sync.Once{}
	for sc.Scan() {
		p.mu.Lock()
		p.stderr.WriteString(sc.Text() + "\n")
		p.mu.Unlock()
		if sc.Text() == "p2pd-attack: started" {
			once.Do(func() { close(p.started) })
		}
	}
}

// waitLine waits until the process has written line to stderr, and
// reports whether it did within timeout.
func (p *attackProc) waitLine(line string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains("\n"+p.errText(), "\n"+line+"\n") {
			return true
		}
		select {
		case <-p.scanned:
			return strings.Contains("\n"+p.errText(), "\n"+line+"\n")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

func (p *attackProc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// wait waits for the process and its stderr.
func (p *attackProc) wait() error {
	<-p.scanned
	return p.cmd.Wait()
}

// stop ends the attack (SIGTERM; it reports what it did so far) and
// decodes its result into v.
func (p *attackProc) stop(t *testing.T, v any) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("p2pd-attack: %v\n%s", err, p.errText())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("p2pd-attack did not end 30 s after SIGTERM\n%s", p.errText())
	}
	if err := json.Unmarshal(p.stdout.Bytes(), v); err != nil {
		t.Fatalf("p2pd-attack's result %q: %v", p.stdout.String(), err)
	}
}

// dials makes count new sessions from the trusted peer's namespace, one
// started every interval, and returns the measurement.
func (al *attackLab) dials(count int, interval time.Duration) attack.DialsResult {
	al.t.Helper()
	p := al.run(al.peer, "dials", "-target", victimAddr, "-peer", al.victim.id, "-key", al.trustedKey,
		"-local", trustedIP, "-count", strconv.Itoa(count), "-interval", interval.String(), "-timeout", "2s")
	if err := p.wait(); err != nil {
		al.t.Fatalf("p2pd-attack dials: %v\n%s", err, p.errText())
	}
	var res attack.DialsResult
	if err := json.Unmarshal(p.stdout.Bytes(), &res); err != nil {
		al.t.Fatalf("p2pd-attack dials' result %q: %v", p.stdout.String(), err)
	}
	return res
}

// baseline checks that the trusted peer gets sessions before any attack
// (else the harness, not the victim, is broken) and returns their p50.
func (al *attackLab) baseline() time.Duration {
	al.t.Helper()
	res := al.dials(5, 100*time.Millisecond)
	if res.OK != res.Count {
		al.t.Fatalf("before the attack only %d/%d trusted sessions: %+v\n--- victim's log:\n%s", res.OK, res.Count, res.Dials, al.victim.log)
	}
	return res.P50
}

// goroutines is the daemon's goroutine count from its control socket's
// pprof endpoint, or -1.
func goroutines(n *testNode) int {
	c := http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", n.socket())
		}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://p2pd/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	total, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return -1
	}
	v, err := strconv.Atoi(total)
	if err != nil {
		return -1
	}
	return v
}

// victimWatch samples the victim's RSS (every 250 ms) and goroutines
// (every second) until stop, keeping the peaks. onRSS, if set, sees every
// RSS growth sample (KiB over the start).
type victimWatch struct {
	rss0, peakRSS int64 // KiB
	g0, peakG     int
	stopc, done   chan struct{}
}

func watchVictim(n *testNode, onRSS func(growthKiB int64)) *victimWatch {
	w := &victimWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	pid := n.cmd.Process.Pid
	w.rss0, w.g0 = rssKiB(pid), goroutines(n)
	w.peakRSS, w.peakG = w.rss0, w.g0
	go func() {
		defer close(w.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-w.stopc:
				return
			case <-tick.C:
			}
			r := rssKiB(pid)
			w.peakRSS = max(w.peakRSS, r)
			if onRSS != nil {
				onRSS(r - w.rss0)
			}
			if i%4 == 3 {
				w.peakG = max(w.peakG, goroutines(n))
			}
		}
	}()
	return w
}

// stop ends the sampling; the peaks are read after it.
func (w *victimWatch) stop() {
	close(w.stopc)
	<-w.done
}

func (w *victimWatch) growthMiB() float64 { return float64(w.peakRSS-w.rss0) / 1024 }

// alive fails the test if the daemon has exited.
func alive(t *testing.T, n *testNode) {
	t.Helper()
	select {
	case err := <-n.exit:
		n.exit <- err
		t.Fatalf("the victim exited during the attack: %v\n%s", err, tailLines(n.log.String(), 30))
	default:
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// checkTrusted asserts the targets for the trusted peer's new
// sessions.
func checkTrusted(t *testing.T, res attack.DialsResult) {
	t.Helper()
	for _, p := range trustedMisses(res) {
		t.Error(p)
	}
}

// trustedMisses says which of the targets for the trusted peer's new
// sessions res misses.
func trustedMisses(res attack.DialsResult) []string {
	var miss []string
	if res.OK*10 < res.Count*9 {
		errs := map[string]int{}
		for _, d := range res.Dials {
			if d.Err != "" {
				errs[d.Err]++
			}
		}
		miss = append(miss, fmt.Sprintf("trusted new sessions: %d/%d succeeded, want ≥ 90 %%; errors: %v", res.OK, res.Count, errs))
	}
	if res.P90 > time.Second {
		miss = append(miss, fmt.Sprintf("trusted new sessions: p90 %v, want ≤ 1s", res.P90))
	}
	return miss
}

func checkRSS(t *testing.T, w *victimWatch) {
	t.Helper()
	if g := w.growthMiB(); g >= 64 {
		t.Errorf("victim RSS grew by %.1f MiB (%d → %d KiB peak), want < 64 MiB", g, w.rss0, w.peakRSS)
	}
}
