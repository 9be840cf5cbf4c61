package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// scaleResult is everything the scale measurement found.
type scaleResult struct {
	N            int             `json:"n"`
	Started      int             `json:"started"`
	StartSeconds float64         `json:"start_seconds"`
	IdleSeconds  float64         `json:"idle_seconds"`
	Nodes        []scaleNodeIdle `json:"nodes"`
	Cold         []scaleContact  `json:"cold"`
	AfterKill    []scaleContact  `json:"after_bootstrap_killed"`
	Alive        int             `json:"alive_at_end"`         // nodes other than the bootstrap still running
	MachineBusy  float64         `json:"machine_busy_percent"` // all CPUs, over the idle window, everyone's work
	Notes        []string        `json:"notes,omitempty"`
}

func (s *scaleResult) note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

// scaleNodeIdle is one node at the end of the idle window.
type scaleNodeIdle struct {
	Name          string  `json:"name"`
	Bootstrap     bool    `json:"bootstrap,omitempty"`
	Sessions      int     `json:"sessions"`
	RSSKiB        int64   `json:"rss_kib"`     // VmRSS, the binary's shared pages included
	AnonKiB       int64   `json:"anon_kib"`    // RssAnon: private memory
	PSSKiB        int64   `json:"pss_kib"`     // shared pages divided among the daemons
	CPUPercent    float64 `json:"cpu_percent"` // of one core, over the window
	Goroutines    int     `json:"goroutines"`  // -1 if unread
	QUICConns     int     `json:"quic_conns"`  // libp2p's and the overlay's, from the goroutines
	BytesPerMin   float64 `json:"bytes_per_min"`
	PacketsPerMin float64 `json:"packets_per_min"`
	Error         string  `json:"error,omitempty"`
}

// scaleContact is one cold first contact.
type scaleContact struct {
	From             string  `json:"from"`
	To               string  `json:"to"`
	OK               bool    `json:"ok"`
	Seconds          float64 `json:"seconds"` // p2pctl's wall time, the dial included
	WarmSeconds      float64 `json:"warm_seconds,omitempty"`
	Path             string  `json:"path,omitempty"`
	Remote           string  `json:"remote,omitempty"`
	AfterKillSeconds float64 `json:"after_kill_seconds,omitempty"` // when it started, after the bootstrap died
	Error            string  `json:"error,omitempty"`
}

// dist is a sample's mean and quantiles.
type dist struct{ mean, p50, p90, max float64 }

func distOf(v []float64) dist {
	if len(v) == 0 {
		return dist{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return dist{mean: sum / float64(len(s)), p50: q(0.5), p90: q(0.9), max: s[len(s)-1]}
}

func (r *runner) scaleMarkdown(res *scaleResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# p2pd at scale: %d nodes\n\n%s", res.N, r.machineLine())
	fmt.Fprintf(&b, "Date: %s; load %s at the start, %s at the end.\nCommand: `%s`\n\n", r.machine.Date, r.machine.LoadStart, r.machine.LoadEnd, r.command)
	fmt.Fprintf(&b, "%d nodes, each in its own network namespace on its own link to one router; DHT only "+
		"(mdns = false), s0 the one bootstrap node, every node trusting the other %d by peer ID alone. "+
		"%d of %d started in %.0f s (batches of %d). Idle window: %.0f s after the last node came up.\n\n",
		res.N, res.N-1, res.Started, res.N, res.StartSeconds, r.o.scaleBatch, res.IdleSeconds)

	var boot *scaleNodeIdle
	var sess, rss, anon, pss, cpu, gor, conns, bytes, pkts []float64
	var cpuAll, rssAll float64
	for i := range res.Nodes {
		n := &res.Nodes[i]
		cpuAll += n.CPUPercent
		rssAll += float64(n.PSSKiB)
		if n.Bootstrap {
			boot = n
			continue
		}
		sess = append(sess, float64(n.Sessions))
		rss = append(rss, float64(n.RSSKiB)/1024)
		anon = append(anon, float64(n.AnonKiB)/1024)
		pss = append(pss, float64(n.PSSKiB)/1024)
		cpu = append(cpu, n.CPUPercent)
		if n.Goroutines >= 0 {
			gor = append(gor, float64(n.Goroutines))
			conns = append(conns, float64(n.QUICConns))
		}
		bytes = append(bytes, n.BytesPerMin/1024)
		pkts = append(pkts, n.PacketsPerMin)
	}
	if len(sess) > 0 {
		fmt.Fprintf(&b, "| idle, per node (the %d other than the bootstrap node) | mean | p50 | p90 | max | bootstrap node |\n|---|--:|--:|--:|--:|--:|\n", len(sess))
		row := func(name string, v []float64, bv float64) {
			d := distOf(v)
			bs := "–"
			if boot != nil {
				bs = fmtNum(bv)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", name, fmtNum(d.mean), fmtNum(d.p50), fmtNum(d.p90), fmtNum(d.max), bs)
		}
		var bt scaleNodeIdle
		if boot != nil {
			bt = *boot
		}
		row("sessions (`p2pctl --json sessions`)", sess, float64(bt.Sessions))
		row("RSS (MiB, VmRSS: the binary's shared pages included)", rss, float64(bt.RSSKiB)/1024)
		row("private memory (MiB, RssAnon)", anon, float64(bt.AnonKiB)/1024)
		row("proportional memory (MiB, Pss: shared pages divided among the daemons)", pss, float64(bt.PSSKiB)/1024)
		row("CPU (% of one core over the window)", cpu, bt.CPUPercent)
		row("goroutines (control socket's pprof)", gor, float64(bt.Goroutines))
		row("QUIC connections (libp2p and overlay; quic-go connection goroutines)", conns, float64(bt.QUICConns))
		row("traffic, sent + received (KiB/min, the node's link)", bytes, bt.BytesPerMin/1024)
		row("packets, sent + received (per min)", pkts, bt.PacketsPerMin)
		fmt.Fprintf(&b, "\nAll %d daemons together: %.1f %% of one core, %.2f GiB of memory (the sum of their Pss). The machine's %d cores were %.0f %% busy over the window (everyone's work); near 100 %% the CPU figures are what the daemons got, not what they asked for.\n\n",
			len(res.Nodes), cpuAll, rssAll/(1<<20), r.machine.NProc, res.MachineBusy)
	}

	fmt.Fprintf(&b, "| cold first contact (`p2pctl --json ping PEER --timeout 30s`, wall time) | pairs | success | p50 | p90 | max | warm ping p50 |\n|---|--:|--:|--:|--:|--:|--:|\n")
	contactRow(&b, "bootstrap node up", res.Cold)
	label := "after the bootstrap node was killed"
	if len(res.AfterKill) > 0 {
		var first, last float64
		for i, c := range res.AfterKill {
			if i == 0 || c.AfterKillSeconds < first {
				first = c.AfterKillSeconds
			}
			last = max(last, c.AfterKillSeconds)
		}
		label += fmt.Sprintf(" (started %.0f–%.0f s after)", first, last)
	}
	contactRow(&b, label, res.AfterKill)
	fmt.Fprintf(&b, "\nEvery figure counts a failure as %s. Nodes other than the bootstrap still running at the end: %d of %d.\n", scalePingTimeout, res.Alive, max(0, res.Started-1))
	for _, set := range [][]scaleContact{res.Cold, res.AfterKill} {
		shown := 0
		for _, c := range set {
			if !c.OK && shown < 5 {
				fmt.Fprintf(&b, "\n- %s → %s failed after %.1f s: %s", c.From, c.To, c.Seconds, c.Error)
				shown++
			}
		}
	}
	if len(res.Notes) > 0 {
		b.WriteString("\n\nNotes:\n")
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "\n- %s", n)
		}
	}
	b.WriteString("\n")
	return b.String()
}

func contactRow(b *strings.Builder, name string, cs []scaleContact) {
	var secs, warm []float64
	ok := 0
	paths := map[string]int{}
	for _, c := range cs {
		s := c.Seconds
		if !c.OK {
			s = scalePingTimeout.Seconds()
		} else {
			ok++
			path := c.Path
			if path == "" {
				path = "path not reported"
			}
			paths[path]++
			if c.WarmSeconds > 0 {
				warm = append(warm, c.WarmSeconds*1000)
			}
		}
		secs = append(secs, s*1000)
	}
	d, w := distOf(secs), distOf(warm)
	pct := 0.0
	if len(cs) > 0 {
		pct = 100 * float64(ok) / float64(len(cs))
	}
	var ps []string
	for p, k := range paths {
		ps = append(ps, fmt.Sprintf("%d %s", k, p))
	}
	slices.Sort(ps)
	if len(ps) > 0 {
		name += " (" + strings.Join(ps, ", ") + ")"
	}
	fmt.Fprintf(b, "| %s | %d | %.0f %% | %s ms | %s ms | %s ms | %s ms |\n", name, len(cs), pct, fmtNum(d.p50), fmtNum(d.p90), fmtNum(d.max), fmtNum(w.p50))
}

// writeScale writes scale-N-results.md and .json into o.out and prints
// the markdown.
func (r *runner) writeScale(res *scaleResult) error {
	md := r.scaleMarkdown(res)
	js, err := json.MarshalIndent(map[string]any{"machine": r.machine, "command": r.command, "result": res}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.o.out, 0o755); err != nil {
		return err
	}
	base := filepath.Join(r.o.out, fmt.Sprintf("scale-%d-results", res.N))
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	r.logf("wrote %s.md and .json", base)
	return nil
}
