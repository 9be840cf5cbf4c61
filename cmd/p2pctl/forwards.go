package main

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func forwardsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "forwards",
		Short: "List local port forwards to peers' services",
		Args:  cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			forwards, err := a.client().Forwards(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string][]control.Forward{"forwards": nonNil(forwards)})
			}
			t := newTable(a.out, "LISTEN", "PEER", "SERVICE", "ACTIVE", "MAX", "TOTAL", "REFUSED", "ACCEPT-ERRORS", "ERRORS")
			for _, f := range forwards {
				t.row(listenLabel(f), f.Peer, f.Service, strconv.Itoa(f.Active), strconv.Itoa(f.MaxConnections),
					strconv.FormatUint(f.Total, 10), strconv.FormatUint(f.Refused, 10), strconv.FormatUint(f.AcceptErrors, 10),
					errorCounts(f.Errors))
			}
			return t.flush()
		}),
	}
}
