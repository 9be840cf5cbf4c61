// Command p2pd-attack runs the hostile clients of package attack against
// one target, for p2pd's attack tests in network namespaces:
//
//	p2pd-attack spoof   -target IP:PORT -sources 10.99.0.0/16 -rate 200 -duration 10s
//	p2pd-attack garbage -target IP:PORT -sources 10.99.0.0/16 -rate 200 -duration 10s
//	p2pd-attack silent  -target IP:PORT -sources 10.72.0.10+16 -per-source 16 -duration 10s
//	p2pd-attack streams -target IP:PORT -sources 10.72.0.10+4 -conns 16 -duration 10s
//	p2pd-attack dials   -target IP:PORT -peer 12D3KooW... -key identity.key -local IP -count 25
//
// Sources for silent and streams are local addresses: a comma-separated
// list of IPs, each optionally "+N" for N consecutive addresses. It writes
// "p2pd-attack: started" to stderr when the attack begins (after any
// preparation), "p2pd-attack: flooded" when streams has flooded all its
// connections, and its result as one JSON object to stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/p2pd/p2pd/bench/attack"
	"github.com/p2pd/p2pd/identity"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: p2pd-attack spoof|garbage|silent|streams|dials -target IP:PORT [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, os.Args[1], os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "p2pd-attack:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "p2pd-attack:", err)
		os.Exit(1)
	}
}

func started() { fmt.Fprintln(os.Stderr, "p2pd-attack: started") }

func run(ctx context.Context, mode string, args []string) (any, error) {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	target := fs.String("target", "", "the victim's UDP address, IP:PORT")
	sources := fs.String("sources", "", "spoof/garbage: a prefix to forge sources from; silent/streams: local IPs (IP[+N],...)")
	rate := fs.Int("rate", 200, "spoof/garbage: packets per second")
	pool := fs.Int("pool", 0, "spoof: distinct Initials made before the flood (default: one per packet, up to 20000)")
	duration := fs.Duration("duration", 10*time.Second, "how long the attack lasts")
	perSource := fs.Int("per-source", 16, "silent: connections kept open per source")
	conns := fs.Int("conns", 16, "streams: connections in all")
	maxStreams := fs.Int("max-streams", attack.DefaultMaxStreams, "streams: bound on streams per connection")
	keyFile := fs.String("key", "", "dials: the trusted peer's key file")
	peer := fs.String("peer", "", "dials: the victim's peer ID")
	local := fs.String("local", "0.0.0.0", "dials: the local IP to dial from")
	count := fs.Int("count", 25, "dials: new sessions to make")
	interval := fs.Duration("interval", 400*time.Millisecond, "dials: time between the starts of two dials")
	timeout := fs.Duration("timeout", 2*time.Second, "dials: time one dial may take")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	tgt, err := netip.ParseAddrPort(*target)
	if err != nil && mode != "dials" {
		return nil, fmt.Errorf("-target %q: %w", *target, err)
	}
	switch mode {
	case "spoof", "garbage":
		pfx, err := netip.ParsePrefix(*sources)
		if err != nil {
			return nil, fmt.Errorf("-sources %q: want a prefix: %w", *sources, err)
		}
		return attack.Flood(ctx, attack.FloodConfig{Target: tgt, Sources: pfx, Rate: *rate, Duration: *duration,
			Garbage: mode == "garbage", Pool: *pool, Started: started})
	case "silent":
		srcs, err := parseSources(*sources)
		if err != nil {
			return nil, err
		}
		return attack.Silent(ctx, attack.SilentConfig{Target: tgt, Sources: srcs, PerSource: *perSource,
			Duration: *duration, Started: started})
	case "streams":
		srcs, err := parseSources(*sources)
		if err != nil {
			return nil, err
		}
		return attack.Streams(ctx, attack.StreamsConfig{Target: tgt, Sources: srcs, Conns: *conns,
			MaxStreams: *maxStreams, Duration: *duration, Started: started,
			Flooded: func() { fmt.Fprintln(os.Stderr, "p2pd-attack: flooded") }})
	case "dials":
		key, err := identity.LoadKeyFile(*keyFile)
		if err != nil {
			return nil, err
		}
		id, err := identity.ParsePeerID(*peer)
		if err != nil {
			return nil, err
		}
		started()
		return attack.Dials(ctx, attack.DialsConfig{Key: key, Peer: id, Target: *target, Local: *local,
			Count: *count, Interval: *interval, Timeout: *timeout})
	}
	return nil, fmt.Errorf("unknown mode %q: want spoof, garbage, silent, streams or dials", mode)
}

// parseSources reads "IP[+N],..." into a list of addresses.
func parseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for item := range strings.SplitSeq(s, ",") {
		ipText, nText, plus := strings.Cut(strings.TrimSpace(item), "+")
		a, err := netip.ParseAddr(ipText)
		if err != nil {
			return nil, fmt.Errorf("-sources %q: %w", s, err)
		}
		n := 1
		if plus {
			if n, err = strconv.Atoi(nText); err != nil || n < 1 || n > 4096 {
				return nil, fmt.Errorf("-sources %q: %q: want a count of 1–4096 after +", s, item)
			}
		}
		for range n {
			out = append(out, a)
			a = a.Next()
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-sources: none given")
	}
	return out, nil
}
