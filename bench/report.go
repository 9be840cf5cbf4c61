package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// report is the JSON document; the markdown table is made from it.
type report struct {
	Machine machine        `json:"machine"`
	Command string         `json:"command"`
	Options map[string]any `json:"options"`
	Figures []figureReport `json:"figures"`
	Notes   []string       `json:"notes"`
}

type figureReport struct {
	figure
	Systems map[string]summary `json:"systems"`
	// Ratios is p2pd's median divided by each baseline's median.
	Ratios map[string]float64 `json:"p2pd_ratio"`
}

func (r *runner) buildReport() report {
	rep := report{Machine: r.machine, Command: r.command, Options: r.o.asMap()}
	rep.Machine.LoadEnd = loadAvg()
	for _, f := range figures {
		fr := figureReport{figure: f, Systems: map[string]summary{}, Ratios: map[string]float64{}}
		for _, s := range systemOrder {
			if sum, ok := r.res.summary(f.ID, s); ok {
				fr.Systems[s] = sum
			}
		}
		if len(fr.Systems) == 0 {
			continue
		}
		if p, ok := fr.Systems[sysP2PD]; ok {
			for s, sum := range fr.Systems {
				if s != sysP2PD && sum.Median != 0 {
					fr.Ratios[s] = p.Median / sum.Median
				}
			}
		}
		rep.Figures = append(rep.Figures, fr)
	}
	r.res.mu.Lock()
	rep.Notes = append(rep.Notes, r.res.notes...)
	r.res.mu.Unlock()
	rep.Notes = append(rep.Notes, r.setupNotes()...)
	return rep
}

// setupNotes says how many emulated round trips a new session costs: the
// difference between the setup time at the emulated RTT and on plain
// loopback, in RTTs. Both are medians over the same kind of sample.
func (r *runner) setupNotes() []string {
	rtt := r.o.setupRTT
	if rtt <= 0 {
		return nil
	}
	var out []string
	for _, s := range []string{sysP2PD, sysQuicRaw} {
		lo, ok1 := r.res.summary("setup_lo", s)
		at, ok2 := r.res.summary("setup_rtt", s)
		if !ok1 || !ok2 {
			continue
		}
		ms := float64(rtt) / 1e6
		out = append(out, fmt.Sprintf("session setup, %s: %.2f ms at an emulated RTT of %s (a relay delays each packet by %s each way) against %.2f ms on loopback: the handshakes cost %.2f round trips plus %.2f ms; the target for p2pd is ≤ 2 round trips + 2 ms of CPU (%.1f ms here)",
			s, at.Median, rtt, rtt/2, lo.Median, (at.Median-lo.Median)/ms, lo.Median, 2*ms+2))
	}
	return out
}

func (rep report) markdown() string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "## p2pd benchmark, %s\n\n", m.Date)
	fmt.Fprintf(&b, "Machine: %d cores, %s, kernel %s, %s RAM; %s; %s; root: %v; net.core.rmem_max %s, wmem_max %s; RLIMIT_NOFILE %d; load average %s at the start, %s at the end.\n\n",
		m.NProc, m.CPU, m.Kernel, m.MemTotal, m.Go, m.Stunnel, m.Root, m.RmemMax, m.WmemMax, m.NoFile, m.LoadStart, m.LoadEnd)
	fmt.Fprintf(&b, "Command: `%s`\n\n", rep.Command)
	b.WriteString("| figure | system | median | min – max | n | p2pd ÷ system |\n|---|---|--:|--:|--:|--:|\n")
	for _, f := range rep.Figures {
		dir := "lower is better"
		if f.Higher {
			dir = "higher is better"
		}
		first := true
		for _, s := range systemOrder {
			sum, ok := f.Systems[s]
			if !ok {
				continue
			}
			title := ""
			if first {
				title = fmt.Sprintf("%s (%s; %s)", f.Title, f.Unit, dir)
				first = false
			}
			name, ratio := s, ""
			if s == sysP2PD {
				name = "**p2pd**"
			} else if r, ok := f.Ratios[s]; ok {
				ratio = fmt.Sprintf("%.2f×", r)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s – %s | %d | %s |\n", title, name,
				fmtNum(sum.Median), fmtNum(sum.Min), fmtNum(sum.Max), len(sum.Samples), ratio)
		}
	}
	if len(rep.Notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range rep.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// fmtNum shows three significant digits, without exponents for the usual range.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func (rep report) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	md := filepath.Join(dir, "bench-results.md")
	if err := os.WriteFile(md, []byte(rep.markdown()), 0o644); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	return md, os.WriteFile(filepath.Join(dir, "bench-results.json"), append(js, '\n'), 0o644)
}

func (o *options) asMap() map[string]any {
	return map[string]any{
		"quick": o.quick, "reps": o.reps, "bulk_mib": o.bulkMiB, "rtt_count": o.rttCount,
		"conn_secs": o.connSecs, "rr_secs": o.rrSecs, "setup_samples": o.setupN, "setup_rtt": o.setupRTT.String(),
		"mem_conns": o.memConns, "mem_conns_stunnel": o.memStun, "peers": o.peers, "netns": o.netns, "netns_reps": o.netnsReps,
		"systems": o.systems, "skip": o.skip, "p2pd_log_level": o.logLevel,
		"p2pd_env": o.p2pdEnv,
	}
}
