package main

import (
	"context"
	"fmt"
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
			t := newTable(a.out, "NAME", "ID", "STATE", "PATH", "ENDPOINT", "LAST-HANDSHAKE", "FOUND-BY", "ADDRESSES", "ORIGIN")
			for _, p := range peers {
				path := p.Path
				if p.Relay != "" {
					path += " via " + p.Relay
				}
				if p.Carrier == "tcp" || p.Carrier == "libp2p" {
					path += " (" + p.Carrier + ")"
				}
				t.row(p.Name, p.ID, p.State, path, p.Endpoint, ago(p.LastHandshake, now), strings.Join(p.Sources, ","), strings.Join(p.Addresses, ","), p.Origin)
			}
			if err := t.flush(); err != nil {
				return err
			}
			// Why a peer is not connected reads better below the table.
			for _, p := range peers {
				if p.State != control.PeerConnected && p.LastError != "" {
					fmt.Fprintf(a.out, "%s: %s\n", p.Name, p.LastError)
				}
				if p.CarrierReason != "" {
					fmt.Fprintf(a.out, "%s: over TCP: %s\n", p.Name, p.CarrierReason)
				}
				if p.DirectReason != "" {
					fmt.Fprintf(a.out, "%s: relayed: %s\n", p.Name, p.DirectReason)
				}
			}
			return nil
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
