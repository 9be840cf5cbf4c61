package main

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func flowsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "flows",
		Short: "List the live UDP flows with datagrams sent, received and dropped by reason",
		Long: "List the live UDP flows: OUT flows are local clients of udp forwards and SOCKS5 UDP\n" +
			"associations, IN flows are peers' flows to udp services on this node. DROPPED counts\n" +
			"lost datagrams by reason (queue_full, too_large, dial_failed, send_queue).",
		Args: cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			flows, err := a.client().Flows(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string][]control.Flow{"flows": nonNil(flows)})
			}
			t := newTable(a.out, "DIR", "LOCAL", "PEER", "SERVICE", "SENT", "RECEIVED", "DROPPED", "IDLE")
			for _, f := range flows {
				local := f.Listener + " " + f.Client
				if f.Direction == "in" {
					local = f.Target + " (" + f.Carrier + ")"
				}
				t.row(f.Direction, local, f.Peer, f.Service, strconv.FormatUint(f.Sent, 10),
					strconv.FormatUint(f.Received, 10), errorCounts(f.Dropped), strconv.FormatFloat(f.IdleSeconds, 'f', 0, 64)+"s")
			}
			return t.flush()
		}),
	}
}

// listenLabel is a forward's address, marked "udp" for a udp forward.
func listenLabel(f control.Forward) string {
	if f.Protocol == "udp" {
		return f.Listen + " (udp)"
	}
	return f.Listen
}
