package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// rssKiB reads VmRSS of a process from /proc/PID/status.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("bench: no VmRSS in /proc/%d/status", pid)
}

// cpuNanos is the CPU time of every live thread of a process, from
// /proc/PID/task/*/schedstat (nanoseconds; /proc/PID/stat counts in 10 ms
// ticks, too coarse for one handshake).
func cpuNanos(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("bench: no schedstat for pid %d", pid)
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited meanwhile
		}
		fields := strings.Fields(string(b))
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseInt(fields[0], 10, 64)
		if err == nil {
			sum += v
		}
	}
	return sum, nil
}

// cpuOf sums cpuNanos over processes; a process that cannot be read counts 0.
func cpuOf(procs []*proc) int64 {
	var sum int64
	for _, p := range procs {
		if v, err := cpuNanos(p.pid()); err == nil {
			sum += v
		}
	}
	return sum
}

// raiseNoFile raises RLIMIT_NOFILE to want (hard limit too when allowed)
// and returns the soft limit in force. Children inherit it.
func raiseNoFile(want uint64) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Max < want {
		try := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try) == nil {
			return want
		}
	}
	rl.Cur = min(want, rl.Max)
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const userHZ = 100

// cpuTotalNanos is a process's user+system CPU time from /proc/PID/stat. Unlike
// cpuNanos it includes threads that have exited (stunnel runs a thread per
// connection), at a resolution of 10 ms; it serves windows of seconds.
func cpuTotalNanos(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: unparsable", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the command: state(0) ppid(1) … utime(11) stime(12).
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc/%d/stat: bad utime/stime", pid)
	}
	return (ut + st) * (1e9 / userHZ), nil
}

// cpuTotalOf sums cpuTotalNanos over processes.
func cpuTotalOf(procs []*proc) int64 {
	var sum int64
	for _, p := range procs {
		if v, err := cpuTotalNanos(p.pid()); err == nil {
			sum += v
		}
	}
	return sum
}
