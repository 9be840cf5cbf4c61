package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// scaleIdle lets the overlay idle for -scale-idle, then reads every node's
// figures. It returns each node's session peers (node index → peer
// indices), so that cold contacts avoid those pairs.
func (r *runner) scaleIdle(ctx context.Context, lab *scaleLab, up []*scaleNode, res *scaleResult) (map[int][]int, error) {
	cpu0 := map[int]int64{}
	for _, n := range up {
		cpu0[n.i], _ = cpuTotalNanos(n.proc.pid())
	}
	links0, err := lab.counts()
	if err != nil {
		return nil, err
	}
	busy0, total0 := machineTicks()
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(r.o.scaleIdle):
	}
	links1, err := lab.counts()
	if err != nil {
		return nil, err
	}
	window := time.Since(t0)
	if busy1, total1 := machineTicks(); total1 > total0 {
		res.MachineBusy = 100 * float64(busy1-busy0) / float64(total1-total0)
	}
	// CPU and RSS now, before the slower control-socket reads below.
	cpu1, mem1 := map[int]int64{}, map[int]memKiB{}
	for _, n := range up {
		cpu1[n.i], _ = cpuTotalNanos(n.proc.pid())
		mem1[n.i], _ = procMem(n.proc.pid())
	}
	if len(up) > 1 {
		heap := filepath.Join(r.work, "idle-node-heap.pprof")
		if err := saveHeap(ctx, up[1].socket(), heap); err != nil {
			res.note("heap profile of %s: %v", up[1].name, err)
		} else {
			r.logf("scale: %s's heap profile at the end of the idle window: %s (kept with -keep)", up[1].name, heap)
		}
	}
	minutes := window.Minutes()
	byIndex := map[string]int{}
	for _, n := range up {
		byIndex[n.name] = n.i
	}
	var mu sync.Mutex // guards res.Nodes and sessions
	sessions := map[int][]int{}
	err = forEach(ctx, up, func(n *scaleNode) error {
		s := scaleNodeIdle{Name: n.name, Bootstrap: n.i == scaleBootstrap, Goroutines: -1}
		s.CPUPercent = 100 * float64(cpu1[n.i]-cpu0[n.i]) / float64(window.Nanoseconds())
		s.RSSKiB, s.AnonKiB, s.PSSKiB = mem1[n.i].RSS, mem1[n.i].Anon, mem1[n.i].PSS
		if g, conns, err := goroutines(ctx, n.socket()); err == nil {
			s.Goroutines, s.QUICConns = g, conns
		}
		a, b := links0[n.i], links1[n.i]
		s.BytesPerMin = float64(b.rxBytes-a.rxBytes+b.txBytes-a.txBytes) / minutes
		s.PacketsPerMin = float64(b.rxPackets-a.rxPackets+b.txPackets-a.txPackets) / minutes
		peers, err := r.scaleSessions(ctx, n)
		if err != nil {
			s.Error = err.Error()
		}
		s.Sessions = len(peers)
		mu.Lock()
		defer mu.Unlock()
		res.Nodes = append(res.Nodes, s)
		for _, p := range peers {
			if i, ok := byIndex[p]; ok {
				sessions[n.i] = append(sessions[n.i], i)
			}
		}
		return nil
	})
	res.IdleSeconds = window.Seconds()
	return sessions, err
}

// scaleSessions lists the peers the node holds sessions with.
func (r *runner) scaleSessions(ctx context.Context, n *scaleNode) ([]string, error) {
	out, err := r.ctlSocket(ctx, n.socket(), "--json", "sessions")
	if err != nil {
		return nil, err
	}
	var list []struct {
		Peer string `json:"peer"`
	}
	var env struct {
		Sessions *[]struct {
			Peer string `json:"peer"`
		} `json:"sessions"`
	}
	if json.Unmarshal(out, &env) == nil && env.Sessions != nil {
		list = *env.Sessions
	} else if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("bench: p2pctl --json sessions on %s: unparsable: %.80s", n.name, out)
	}
	peers := make([]string, 0, len(list))
	for _, s := range list {
		peers = append(peers, s.Peer)
	}
	return peers, nil
}

// ctlSocket runs p2pctl against a control socket.
func (r *runner) ctlSocket(ctx context.Context, socket string, args ...string) ([]byte, error) {
	return r.ctl(ctx, &pnode{name: socket, dir: strings.TrimSuffix(socket, "/p2pd.sock")}, args...)
}

// goroutines reads the daemon's goroutine count from its control socket's
// pprof ("goroutine profile: total N"), and how many QUIC connections it
// holds: goroutines running quic-go's connection loop, one per connection.
func goroutines(ctx context.Context, socket string) (total, quicConns int, err error) {
	body, err := debugGet(ctx, socket, "goroutine?debug=1")
	if err != nil {
		return 0, 0, err
	}
	defer body.Close()
	return parseGoroutines(body)
}

// saveHeap writes the daemon's heap profile to path, for `go tool pprof`.
func saveHeap(ctx context.Context, socket, path string) error {
	body, err := debugGet(ctx, socket, "heap")
	if err != nil {
		return err
	}
	defer body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// debugGet fetches one of the control socket's /debug/pprof/ pages.
func debugGet(ctx context.Context, socket, page string) (io.ReadCloser, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://p2pd/debug/pprof/"+page, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("bench: %s /debug/pprof/%s: %s", socket, page, resp.Status)
	}
	return resp.Body, nil
}

// parseGoroutines reads a goroutine profile in its debug=1 text form: a
// "goroutine profile: total N" line, then records of a "COUNT @ PCS" line
// and "#<tab>PC FUNC+OFF FILE:LINE" frames.
func parseGoroutines(r io.Reader) (total, quicConns int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() {
		return 0, 0, fmt.Errorf("bench: goroutine profile: empty")
	}
	_, t, ok := strings.Cut(sc.Text(), "total ")
	if total, err = strconv.Atoi(strings.TrimSpace(t)); !ok || err != nil {
		return 0, 0, fmt.Errorf("bench: goroutine profile: unexpected %.60q", sc.Text())
	}
	group := 0
	for sc.Scan() {
		line := sc.Text()
		if n, rest, ok := strings.Cut(line, " @ "); ok && rest != "" && !strings.HasPrefix(line, "#") {
			group, _ = strconv.Atoi(n)
			continue
		}
		if strings.Contains(line, "quic-go.(*Conn).run+") {
			quicConns += group
			group = 0 // count the record once
		}
	}
	return total, quicConns, sc.Err()
}

// scaleContacts pings -scale-contacts fresh pairs, scaleWorkers at a time:
// a cold ping (the first session between the two, found by the DHT) and at
// once a warm one. Seconds are p2pctl's wall time. killed, if set, is when
// the bootstrap node died.
func (r *runner) scaleContacts(ctx context.Context, up []*scaleNode, used map[[2]int]bool, killed time.Time) []scaleContact {
	pairs := pickPairs(up, used, r.o.scaleContacts)
	out := make([]scaleContact, len(pairs))
	slots := make([]int, len(pairs))
	for k, p := range pairs {
		slots[k] = k
		out[k] = scaleContact{From: p[0].name, To: p[1].name}
	}
	forEach(ctx, slots, func(k int) error {
		from, to := pairs[k][0], pairs[k][1]
		c := &out[k]
		if !killed.IsZero() {
			c.AfterKillSeconds = time.Since(killed).Seconds()
		}
		start := time.Now()
		pong, err := r.ping(ctx, from, to)
		c.Seconds = time.Since(start).Seconds()
		if err != nil {
			c.Error = err.Error()
			return nil
		}
		c.OK, c.Path, c.Remote = true, pong.Path, pong.Remote
		start = time.Now()
		if _, err := r.ping(ctx, from, to); err == nil {
			c.WarmSeconds = time.Since(start).Seconds()
		}
		return nil
	})
	return out
}

type pong struct {
	Path   string  `json:"path"`
	Remote string  `json:"remote"`
	RTT    float64 `json:"rtt_ms"`
}

func (r *runner) ping(ctx context.Context, from, to *scaleNode) (pong, error) {
	var p pong
	out, err := r.ctlSocket(ctx, from.socket(), "--json", "ping", to.name, "--timeout", scalePingTimeout.String())
	if err != nil {
		return p, err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(line), &p); err != nil {
		return p, fmt.Errorf("bench: ping from %s: unparsable %.80q", from.name, line)
	}
	return p, nil
}

// machineTicks reads the first line of /proc/stat: the ticks all CPUs
// were busy and the ticks in all (idle and iowait are not busy).
func machineTicks() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for k, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if k != 3 && k != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}
