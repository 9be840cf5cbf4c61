package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func peersCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List trusted peers and their connection state",
		Args:  cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			peers, err := a.client().Peers(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string][]control.Peer{"peers": nonNil(peers)})
			}
			now := time.Now()
			t := newTable(a.out, "NAME", "ID", "STATE", "ENDPOINT", "LAST-HANDSHAKE", "ADDRESSES")
			for _, p := range peers {
				t.row(p.Name, p.ID, p.State, p.Endpoint, ago(p.LastHandshake, now), strings.Join(p.Addresses, ","))
			}
			return t.flush()
		}),
	}
}

// nonNil returns s, or an empty slice for nil, so that lists print as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
