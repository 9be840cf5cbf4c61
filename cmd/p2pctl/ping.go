package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

type pingFlags struct {
	count       int
	interval    time.Duration
	timeout     time.Duration
	untilDirect bool
}

func pingCmd(a *app) *cobra.Command {
	var f pingFlags
	cmd := &cobra.Command{
		Use:   "ping PEER",
		Short: "Ping a peer (by name or peer ID) over its session",
		Long: "Ping a peer, named by its configured name or its peer ID, over its session.\n" +
			"Each pong shows the peer's address, the path (direct, over QUIC or TCP, or relayed)\n" +
			"and the round-trip time. With --json each pong is one JSON object on a line of its\n" +
			"own (NDJSON), printed as it arrives. With -c N it stops at the first pong over a\n" +
			"direct path (--until-direct, as tailscale ping does), so `p2pctl ping PEER -c 30`\n" +
			"waits for a relayed peer to go direct; --until-direct=false sends all N.\n" +
			"Exits 1 if no ping got an answer.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("ping takes one PEER (a name or peer ID), got %d arguments", len(args))
			}
			return nil
		},
		ValidArgsFunction: a.completePeers,
		RunE: a.action(func(ctx context.Context, args []string) error {
			return a.ping(ctx, args[0], f)
		}),
	}
	cmd.Flags().IntVarP(&f.count, "count", "c", 1, "number of pings")
	cmd.Flags().DurationVarP(&f.interval, "interval", "i", time.Second, "wait between pings")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "wait for each pong, a first dial included")
	cmd.Flags().BoolVar(&f.untilDirect, "until-direct", true, "stop at the first pong over a direct path")
	return cmd
}

func (a *app) ping(ctx context.Context, peer string, f pingFlags) error {
	switch {
	case f.count < 1:
		return usageError("ping: -c/--count %d: must be at least 1", f.count)
	case f.interval < 0:
		return usageError("ping: -i/--interval %v: must not be negative", f.interval)
	case f.timeout < time.Millisecond || f.timeout > control.MaxPingTimeout:
		return usageError("ping: --timeout %v: must be between 1ms and %v", f.timeout, control.MaxPingTimeout)
	}
	c := a.client()
	ndjson := json.NewEncoder(a.out) // compact: one object per line
	var sent, received int
	var lastErr error
	for ; sent < f.count; sent++ {
		if sent > 0 && !sleep(ctx, f.interval) {
			break
		}
		// The daemon gives the ping f.timeout; p2pctl waits a moment more
		// for its answer, so that the daemon's sentence says why.
		pctx, cancel := context.WithTimeout(ctx, f.timeout+2*time.Second)
		res, err := c.PingWithin(pctx, peer, f.timeout)
		cancel()
		if errors.Is(err, control.ErrNotRunning) || errors.Is(err, control.ErrNotFound) || ctx.Err() != nil {
			return err // repeating would not help
		}
		if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			// p2pctl's own --timeout ran out before the daemon answered.
			err = fmt.Errorf("ping %s: no answer within %v (the daemon is still trying to reach the peer; p2pctl peers shows why it is not connected)", peer, f.timeout)
		}
		if err != nil {
			lastErr = err
			if f.count > 1 {
				fmt.Fprintf(a.errOut, "p2pctl: ping %s: %v\n", peer, err)
			}
			continue
		}
		received++
		if a.json {
			if err := ndjson.Encode(res); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(a.out, "pong from %s (%s) in %.3fms\n", res.Peer, pingPath(res), res.RTTMillis)
		}
		if f.untilDirect && f.count > 1 && res.Path == "direct" {
			sent++
			break
		}
	}
	if f.count > 1 && !a.json {
		fmt.Fprintf(a.out, "--- %s: %d sent, %d received\n", peer, sent, received)
	}
	switch {
	case received > 0:
		return nil
	case f.count == 1 && lastErr != nil:
		return lastErr
	default:
		return fmt.Errorf("ping %s: no pong in %d pings", peer, sent)
	}
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pingPath describes where a pong came from: "203.0.113.7:4242, direct",
// "203.0.113.7:4242, direct (tcp)", "relayed via 12D3KooW...", or on a
// direct libp2p connection "/ip4/…/p2p/12D3KooW…, direct (libp2p)". A daemon
// that does not report the path gives the address alone.
func pingPath(res control.PingResult) string {
	switch {
	case res.Path == "":
		return res.Remote
	case res.Relay != "":
		return res.Path + " via " + res.Relay
	case res.Carrier == "tcp" || res.Carrier == "libp2p":
		return res.Remote + ", " + res.Path + " (" + res.Carrier + ")"
	default:
		return res.Remote + ", " + res.Path
	}
}
