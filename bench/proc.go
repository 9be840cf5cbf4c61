package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process: a daemon or a helper. Its output goes to a log
// file; a helper announces readiness with a first stdout line "ready ...".
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	ready   chan string // the ready line; closed without one if the process exits first
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

// procSet owns every child the run starts, so that all are stopped however
// the run ends.
type procSet struct {
	mu    sync.Mutex // guards procs
	procs []*proc
}

// start runs prefix+argv with output to logPath. With readyLine the first
// stdout line is delivered on p.ready.
func (ps *procSet) start(name, logPath string, prefix, argv []string, readyLine bool) (*proc, error) {
	full := append(append([]string{}, prefix...), argv...)
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("bench: log for %s: %w", name, err)
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stderr = logf
	// A child must not outlive the harness, even when the harness is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, logPath: logPath, ready: make(chan string, 1), exited: make(chan struct{})}
	var out io.ReadCloser
	if readyLine {
		if out, err = cmd.StdoutPipe(); err != nil {
			logf.Close()
			return nil, err
		}
	} else {
		cmd.Stdout = logf
		close(p.ready)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start %s (%s): %w", name, full[0], err)
	}
	ps.mu.Lock()
	ps.procs = append(ps.procs, p)
	ps.mu.Unlock()
	go func() {
		if out != nil {
			r := bufio.NewReader(out)
			if line, err := r.ReadString('\n'); err == nil {
				p.ready <- strings.TrimSpace(line)
			}
			close(p.ready)
			io.Copy(logf, r)
		}
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// waitReady waits for the ready line and returns it.
func (p *proc) waitReady(limit time.Duration) (string, error) {
	select {
	case line, ok := <-p.ready:
		if ok {
			return line, nil
		}
		<-p.exited
		return "", fmt.Errorf("bench: %s exited before it was ready (%v); log: %s", p.name, p.waitErr, tail(p.logPath, 5))
	case <-time.After(limit):
		return "", fmt.Errorf("bench: %s not ready after %s; log: %s", p.name, limit, tail(p.logPath, 5))
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after a grace period, and waits.
func (p *proc) stop() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			return
		case <-time.After(3 * time.Second):
		}
		p.cmd.Process.Kill()
		<-p.exited
	})
}

// stopAll stops every child still running, in parallel.
func (ps *procSet) stopAll() {
	ps.mu.Lock()
	procs := ps.procs
	ps.procs = nil
	ps.mu.Unlock()
	stopProcs(procs)
}

func stopProcs(procs []*proc) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
