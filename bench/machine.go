package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// machine describes where the run happened; it heads the report.
type machine struct {
	Date     string `json:"date"`
	NProc    int    `json:"nproc"`
	CPU      string `json:"cpu"`
	Kernel   string `json:"kernel"`
	MemTotal string `json:"mem_total"`
	Go       string `json:"go"`
	Stunnel  string `json:"stunnel"`
	Root     bool   `json:"root"`
	RmemMax  string `json:"net_core_rmem_max"`
	WmemMax  string `json:"net_core_wmem_max"`
	NoFile   uint64 `json:"rlimit_nofile"`
	// Load is /proc/loadavg's first three fields at the start and the end.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

func loadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func describeMachine(nofile uint64) machine {
	m := machine{
		Date:      time.Now().UTC().Format(time.RFC3339),
		NProc:     runtime.NumCPU(),
		CPU:       cpuInfo("model name"),
		Kernel:    readTrim("/proc/sys/kernel/osrelease"),
		Go:        runtime.Version(),
		Root:      os.Geteuid() == 0,
		RmemMax:   readTrim("/proc/sys/net/core/rmem_max"),
		WmemMax:   readTrim("/proc/sys/net/core/wmem_max"),
		NoFile:    nofile,
		LoadStart: loadAvg(),
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(rest)
			}
		}
		f.Close()
	}
	m.Stunnel = "not installed"
	if p, err := stunnelPath(); err == nil {
		out, _ := exec.Command(p, "-version").CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "stunnel ") {
				m.Stunnel = strings.TrimSpace(l)
				break
			}
		}
	}
	return m
}

func cpuInfo(key string) string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
