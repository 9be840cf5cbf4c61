package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runner holds what the whole run shares.
type runner struct {
	o       options
	ctx     context.Context
	p2pd    string
	p2pctl  string
	self    string // this binary, for the helper processes
	work    string
	procs   *procSet
	res     *results
	machine machine
	command string
	start   time.Time
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// scratch records the command line and makes the scratch directory (-work,
// or a new temporary one named with prefix); cleanup removes a temporary
// one unless -keep.
func (r *runner) scratch(args []string, prefix string) (cleanup func(), err error) {
	if r.command = os.Getenv("BENCH_COMMAND"); r.command == "" {
		r.command = strings.TrimSpace("bench " + strings.Join(args, " "))
	}
	if r.work = r.o.work; r.work != "" {
		return func() {}, os.MkdirAll(r.work, 0o700)
	}
	if r.work, err = os.MkdirTemp("", prefix); err != nil {
		return nil, err
	}
	if r.o.keep {
		return func() {}, nil
	}
	return func() { os.RemoveAll(r.work) }, nil
}

// newRunner makes the runner of one measurement, with the built p2pd and
// p2pctl of o.bin.
func newRunner(ctx context.Context, o options) (*runner, error) {
	r := &runner{o: o, ctx: ctx, procs: &procSet{}, res: newResults(), start: time.Now()}
	r.p2pd, r.p2pctl = filepath.Join(o.bin, "p2pd"), filepath.Join(o.bin, "p2pctl")
	for _, b := range []string{r.p2pd, r.p2pctl} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("bench: %s: %w (build it, or use bench/run.sh)", b, err)
		}
	}
	return r, nil
}

func runBench(args []string) error {
	o, err := parseOptions(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	r, err := newRunner(ctx, o)
	if err != nil {
		return err
	}
	if r.self, err = os.Executable(); err != nil {
		return err
	}
	cleanup, err := r.scratch(args, "p2pd-bench-")
	if err != nil {
		return err
	}
	defer cleanup()
	defer r.procs.stopAll()
	nofile := raiseNoFile(1 << 18)
	r.machine = describeMachine(nofile)
	m := r.machine
	fmt.Fprintf(os.Stderr, "machine: %d cores, %s, kernel %s, %s; %s; %s\n", m.NProc, m.CPU, m.Kernel, m.MemTotal, m.Go, m.Stunnel)
	if need := uint64(o.memConns + 1024); nofile < need {
		r.res.note("RLIMIT_NOFILE is %d; the memory figure needs about %d in the harness and in each daemon (raise ulimit -n)", nofile, need)
	}
	r.logf("scratch directory %s", r.work)
	if o.holepunch {
		return r.holePunchOnly()
	}

	if err := r.loopback(); err != nil {
		r.res.note("loopback run stopped: %v", err)
		r.logf("loopback run stopped: %v", err)
	}
	r.procs.stopAll()
	if o.netns && r.ctx.Err() == nil {
		if err := r.netnsRun(); err != nil {
			r.res.note("netns run stopped: %v", err)
			r.logf("netns run stopped: %v", err)
		}
	}
	rep := r.buildReport()
	path, err := rep.write(o.out)
	if err != nil {
		return err
	}
	fmt.Print(rep.markdown())
	r.logf("wrote %s and bench-results.json", path)
	if o.keep {
		r.logf("kept %s", r.work)
	}
	return r.ctx.Err()
}

// loopback runs every figure with both sides on 127.0.0.1.
func (r *runner) loopback() error {
	t := loopbackTopo()
	be, err := r.startBackend(t)
	if err != nil {
		return err
	}
	defer be.proc.stop()
	keys, err := r.makePairKeys(t, "")
	if err != nil {
		return err
	}
	systems := r.startSystems(t, be, keys)
	r.warmup(systems)
	var cold pairKeys
	var raw *system
	if !r.o.skips("setup") {
		if cold, err = r.makePairKeys(t, "cold-"); err != nil {
			return err
		}
		for _, s := range systems {
			if s.name == sysQuicRaw {
				raw = s
			}
		}
	}
	for rep := range r.o.reps {
		r.logf("repetition %d/%d", rep+1, r.o.reps)
		r.measureRound(rep, systems, "", true)
		if !r.o.skips("setup") && r.o.wantSystem(sysP2PD) {
			r.setupRound(rep, t, be, cold, raw)
		}
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
	}
	for _, s := range systems {
		s.stop()
	}
	if !r.o.skips("mem") {
		r.memPhase(t, be, keys)
	}
	if !r.o.skips("peers") && r.ctx.Err() == nil {
		if r.o.wantSystem(sysP2PD) {
			if err := r.idlePeers(t, r.o.peers); err != nil {
				r.res.note("idle peer sessions: %v", err)
				r.logf("idle peers: %v", err)
			}
		}
		if r.o.wantSystem(sysQuicRaw) {
			if err := r.idleQUIC(t, r.o.peers); err != nil {
				r.res.note("idle quic-go connections: %v", err)
			}
		}
	}
	return r.ctx.Err()
}

// netnsRun repeats bulk, RTT and the new-connection rates between two
// namespaces over a veth pair.
func (r *runner) netnsRun() error {
	t, cleanup, err := netnsTopo(r.o.nsPrefix)
	defer cleanup()
	if err != nil {
		return err
	}
	r.logf("netns: %s (%s) ↔ %s (%s) over veth", t.clientNS, t.clientIP, t.serverNS, t.serverIP)
	defer r.procs.stopAll() // every process in the namespaces ends before they are deleted
	be, err := r.startBackend(t)
	if err != nil {
		return err
	}
	keys, err := r.makePairKeys(t, "")
	if err != nil {
		return err
	}
	systems := r.startSystems(t, be, keys)
	r.warmup(systems)
	for rep := range r.o.netnsReps {
		r.logf("netns repetition %d/%d", rep+1, r.o.netnsReps)
		r.measureRound(rep, systems, "ns_", true)
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
	}
	return nil
}
