package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func statusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's identity, uptime and counts",
		Args:  cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			st, err := a.client().Status(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, st)
			}
			tw := tabwriter.NewWriter(a.out, 0, 8, 1, ' ', 0)
			line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
			line("id", st.ID)
			line("name", st.Name)
			line("version", st.Version)
			line("listen", strings.Join(st.Listen, ", "))
			line("started", fmt.Sprintf("%s (up %s)",
				st.StartedAt.Local().Format(time.RFC3339), humanDuration(seconds(st.UptimeSeconds))))
			line("peers", fmt.Sprintf("%d configured, %d connected", st.Peers, st.Connected))
			line("services", fmt.Sprint(st.Services))
			line("forwards", fmt.Sprint(st.Forwards))
			if st.DHT != nil {
				line("dht", fmt.Sprintf("%d nodes in the routing table, %d libp2p connections", st.DHT.RoutingTable, st.DHT.Connections))
			}
			for i, addr := range st.Addresses {
				label := ""
				if i == 0 {
					label = "addresses:"
				}
				fmt.Fprintf(tw, "%s\t%s\n", label, addr)
			}
			config := st.Config
			if config == "" {
				config = "defaults (no config file)"
			}
			line("config", config)
			line("socket", a.socket)
			if err := tw.Flush(); err != nil {
				return err
			}
			if st.Peers == 0 {
				fmt.Fprintln(a.out, "\n"+noPeersHint)
			}
			return nil
		}),
	}
}

// noPeersHint is the next step on a node that trusts nobody yet; `p2pd run`
// logs the same.
const noPeersHint = "no peers yet: run `p2pd id` on the other host and add it with `p2pctl trust add NAME ID`"
