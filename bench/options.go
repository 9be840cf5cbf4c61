package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// options are the run's flags. Zero values are filled from the full or the
// quick profile.
type options struct {
	bin       string // directory holding p2pd and p2pctl
	out       string // directory for the report (markdown and JSON)
	work      string // scratch directory; a fresh temporary one if empty
	keep      bool   // keep the scratch directory
	quick     bool
	reps      int
	bulkMiB   int
	rttCount  int
	connSecs  float64
	rrSecs    float64       // seconds per request/response measurement with many connections
	setupN    int           // cold session-setup samples per repetition and delay
	setupRTT  time.Duration // emulated round-trip time for the second setup figure
	memConns  int
	memStun   int // stunnel runs a thread per connection: opening 10,000 takes minutes
	peers     int
	netns     bool
	netnsReps int
	nsPrefix  string
	systems   string // comma-separated subset, or empty for all
	skip      string // comma-separated phases to skip: mem, peers, setup
	logLevel  string // p2pd [log] level
	// p2pdEnv is KEY=VALUE settings for the p2pd daemons' environment
	// alone (GOMAXPROCS=1, say), not the harness's or the baselines'.
	p2pdEnv []string
	// holepunch runs the hole-punching measurement instead of the figures.
	holepunch     bool
	holepunchReps int
	holepunchWait time.Duration // per trial, after the first relayed report
	holepunchOnly string        // comma-separated NAT pairs, or empty for all
	// scale: nodes of the scale measurement (-scale N), which runs instead of the figures.
	scale         int
	scaleIdle     time.Duration // nobody talks this long before the idle figures
	scaleContacts int           // cold first contacts, before and after the bootstrap node dies
	scaleBatch    int           // nodes started at once
	scaleMax      time.Duration // cap on the whole measurement
}

const usageText = `bench: p2pd beside direct TCP, raw quic-go, a quic-go tunnel and stunnel4, interleaved.

Usage: bench [run] [flags]

Figures: bulk throughput (1 and 8 TCP streams), 64-byte request/response RTT
p50/p99 on one connection, 64-byte round trips per second and RTT p50/p99
with 8 and 32 concurrent connections, new-connection rate (sequential, 8 in
parallel), tunnel CPU per GiB, cold session setup (loopback and with an
emulated RTT), responder CPU per session setup, RSS per open proxied
connection, RSS per idle peer session;
with -netns also bulk, RTT, concurrent request/response and new-connection
rates between two network namespaces over a veth pair. -holepunch measures
instead how often and how fast a relayed path becomes direct through pairs
of NATs (endpoint-independent, port-restricted, symmetric) in namespaces.
-scale N (root) instead starts N daemons in
namespaces that find each other through the DHT alone and measures idle
cost per node and cold first contacts.

Flags:
`

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.bin, "bin", "", "directory with the built p2pd and p2pctl (required)")
	fs.StringVar(&o.out, "out", ".", "directory for bench-results.md and bench-results.json")
	fs.StringVar(&o.work, "work", "", "scratch directory (default: a new temporary directory, removed at the end)")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory (daemon logs, configs)")
	fs.BoolVar(&o.quick, "quick", false, "short run (under 2 minutes on 2 cores): fewer repetitions, smaller sizes")
	fs.IntVar(&o.reps, "reps", 0, "repetitions of each figure (default 5, quick 2)")
	fs.IntVar(&o.bulkMiB, "bulk-mib", 0, "MiB moved per bulk measurement; 8 streams share it (default 256, quick 64)")
	fs.IntVar(&o.rttCount, "rtt-count", 0, "64-byte round trips per RTT measurement (default and minimum for the table 20000)")
	fs.Float64Var(&o.connSecs, "conn-secs", 0, "seconds per new-connection-rate measurement (default 1, quick 0.5)")
	fs.Float64Var(&o.rrSecs, "rr-secs", 0, "seconds per request/response measurement with 8 and 32 concurrent connections (default 1, quick 0.5)")
	fs.IntVar(&o.setupN, "setup-samples", 0, "session setups per repetition and delay, each system (default 3, quick 2)")
	fs.DurationVar(&o.setupRTT, "setup-rtt", 10*time.Millisecond, "emulated round-trip time of the second session-setup figure (0 to skip)")
	fs.IntVar(&o.memConns, "mem-conns", 0, "open proxied connections for the memory figure (default 10000, quick 2000)")
	fs.IntVar(&o.memStun, "mem-conns-stunnel", 0, "open connections for stunnel's memory figure, a thread each (default 2000, quick 1000)")
	fs.IntVar(&o.peers, "peers", 0, "idle peer sessions with one p2pd hub for the memory figure (default 1000, quick 100)")
	fs.BoolVar(&o.netns, "netns", false, "also measure bulk, RTT, concurrent request/response and new-connection rates between two network namespaces joined by a veth pair (root)")
	fs.IntVar(&o.netnsReps, "netns-reps", 0, "repetitions in the netns topology (default 3, quick 1)")
	fs.StringVar(&o.nsPrefix, "netns-prefix", fmt.Sprintf("pb%d", os.Getpid()), "name prefix of the namespaces and veth devices")
	fs.StringVar(&o.systems, "systems", "", "only these systems, comma-separated: p2pd,p2pd-socks5,p2pd-tcp,tcp,quic-raw,quic-tunnel,stunnel")
	fs.StringVar(&o.skip, "skip", "", "phases to skip, comma-separated: setup,mem,peers")
	fs.StringVar(&o.logLevel, "p2pd-log-level", "warn", "the daemons' [log] level")
	fs.Func("p2pd-env", "KEY=VALUE for the p2pd daemons' environment alone, such as GOMAXPROCS=1 (repeatable)", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("not KEY=VALUE: %q", v)
		}
		o.p2pdEnv = append(o.p2pdEnv, v)
		return nil
	})
	fs.BoolVar(&o.holepunch, "holepunch", false, "measure only hole punching (root): the share of NAT pairs (EI-EI, EI-PR, EI-SYM, PR-PR, PR-SYM, SYM-SYM) whose relayed path becomes direct, and how long it takes; writes holepunch-results.md and .json")
	fs.IntVar(&o.holepunchReps, "holepunch-reps", 0, "trials per NAT pair with -holepunch (default 3, quick 1)")
	fs.DurationVar(&o.holepunchWait, "holepunch-wait", 30*time.Second, "how long a trial waits for the direct path after the first relayed report")
	fs.StringVar(&o.holepunchOnly, "holepunch-pairs", "", "only these NAT pairs with -holepunch, comma-separated (EI-EI,EI-PR,EI-SYM,PR-PR,PR-SYM,SYM-SYM)")
	fs.IntVar(&o.scale, "scale", 0, "measure only scale (root): N nodes in namespaces, DHT only, trusting each other by ID; idle sessions, RSS, CPU, goroutines and traffic per node, cold first contacts before and after the bootstrap node dies; writes scale-N-results.md and .json")
	fs.DurationVar(&o.scaleIdle, "scale-idle", 2*time.Minute, "with -scale, how long nobody talks before the idle figures")
	fs.IntVar(&o.scaleContacts, "scale-contacts", 60, "with -scale, cold first contacts before and again after the bootstrap node dies")
	fs.IntVar(&o.scaleBatch, "scale-batch", 10, "with -scale, nodes started at once")
	fs.DurationVar(&o.scaleMax, "scale-max", 30*time.Minute, "with -scale, cap on the whole measurement")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench: unexpected argument %q (see -help)", fs.Arg(0))
	}
	if o.bin == "" {
		return o, fmt.Errorf("bench: -bin is required: the directory with the built p2pd and p2pctl (bench/run.sh sets it)")
	}
	o.fillDefaults()
	return o, nil
}

func (o *options) fillDefaults() {
	pick := func(v *int, full, quick int) {
		if *v <= 0 {
			*v = full
			if o.quick {
				*v = quick
			}
		}
	}
	pick(&o.reps, 5, 2)
	pick(&o.bulkMiB, 256, 64)
	pick(&o.rttCount, 20000, 20000)
	pick(&o.setupN, 3, 2)
	pick(&o.memConns, 10000, 2000)
	pick(&o.memStun, 2000, 1000)
	pick(&o.peers, 1000, 100)
	pick(&o.netnsReps, 3, 1)
	pick(&o.holepunchReps, 3, 1)
	for _, v := range []*float64{&o.connSecs, &o.rrSecs} {
		if *v <= 0 {
			*v = 1
			if o.quick {
				*v = 0.5
			}
		}
	}
}

func (o *options) wantSystem(name string) bool {
	return o.systems == "" || listHas(o.systems, name)
}

func (o *options) skips(phase string) bool { return listHas(o.skip, phase) }

func listHas(list, item string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == item {
			return true
		}
	}
	return false
}
