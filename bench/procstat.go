package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// rssKiB reads VmRSS of a process from /proc/PID/status.
func rssKiB(pid int) (int64, error) {
	v, err := procFields(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	return v["VmRSS:"], err
}

// memKiB is a process's memory three ways: VmRSS (every resident page it
// maps, the executable's shared pages included), RssAnon (its private
// memory: heap, stacks) and Pss (each shared page divided among the
// processes that map it, which is what N daemons of one binary cost each).
type memKiB struct{ RSS, Anon, PSS int64 }

func procMem(pid int) (memKiB, error) {
	st, err := procFields(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:", "RssAnon:")
	if err != nil {
		return memKiB{}, err
	}
	sm, err := procFields(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
	if err != nil {
		return memKiB{}, err
	}
	return memKiB{RSS: st["VmRSS:"], Anon: st["RssAnon:"], PSS: sm["Pss:"]}, nil
}

// procFields reads the kB figures of the named lines of a /proc file.
func procFields(path string, names ...string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[string]int64, len(names))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && slices.Contains(names, fields[0]) {
			v, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bench: %s: %q: %v", path, sc.Text(), err)
			}
			out[fields[0]] = v
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("bench: no %s line in %s", n, path)
		}
	}
	return out, sc.Err()
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
