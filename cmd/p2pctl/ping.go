package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

type pingFlags struct {
	count    int
	interval time.Duration
	timeout  time.Duration
}

func pingCmd(a *app) *cobra.Command {
	var f pingFlags
	cmd := &cobra.Command{
		Use:   "ping PEER",
		Short: "Ping a peer (by name or peer ID) over its session",
		Long: "Ping a peer, named by its configured name or its peer ID, over its session.\n" +
			"With --json each pong is printed as one JSON object.\n" +
			"Exits 1 if no ping got an answer.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("ping takes one PEER (a name or peer ID), got %d arguments", len(args))
			}
			return nil
		},
		RunE: a.action(func(ctx context.Context, args []string) error {
			return a.ping(ctx, args[0], f)
		}),
	}
	cmd.Flags().IntVarP(&f.count, "count", "c", 1, "number of pings")
	cmd.Flags().DurationVarP(&f.interval, "interval", "i", time.Second, "wait between pings")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "wait for each pong")
	return cmd
}

func (a *app) ping(ctx context.Context, peer string, f pingFlags) error {
	if f.count < 1 {
		return usageError("ping: --count must be at least 1, not %d", f.count)
	}
	if f.interval < 0 || f.timeout <= 0 {
		return usageError("ping: --interval must not be negative and --timeout must be positive")
	}
	c := a.client()
	var sent, received int
	var lastErr error
	for ; sent < f.count; sent++ {
		if sent > 0 && !sleep(ctx, f.interval) {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, f.timeout)
		res, err := c.Ping(pctx, peer)
		cancel()
		if errors.Is(err, control.ErrNotRunning) || errors.Is(err, control.ErrNotFound) || ctx.Err() != nil {
			return err // repeating would not help
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
			if err := printJSON(a.out, res); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(a.out, "pong from %s (%s) in %.3fms\n", res.Peer, res.Remote, res.RTTMillis)
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
