package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func whoisCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "whois ADDR",
		Short: "Tell which peer and service own a connection to a local backend",
		Long: "Tell which peer and service own the connection that p2pd made to a service's target\n" +
			"from ADDR, the client address the backend sees (e.g. 127.0.0.1:53422 in its log).\n" +
			"For backends that cannot take the PROXY protocol. Exits 1 if no overlay\n" +
			"connection comes from ADDR (it may have ended already).",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("whois takes one ADDR (the backend's client address, like 127.0.0.1:53422), got %d arguments", len(args))
			}
			return nil
		},
		RunE: a.action(func(ctx context.Context, args []string) error {
			addr, err := netip.ParseAddrPort(args[0])
			if err != nil {
				return usageError("whois: %q is not an IP address and port like 127.0.0.1:53422 or [::1]:53422", args[0])
			}
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			conns, err := a.client().Whois(ctx, addr)
			if errors.Is(err, control.ErrNotFound) {
				return fmt.Errorf("no overlay connection from %s", addr)
			}
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string][]control.Connection{"connections": nonNil(conns)})
			}
			t := newTable(a.out, "ADDR", "PEER", "PEER-ID", "SERVICE", "TARGET", "AGE")
			for _, c := range conns {
				t.row(c.Addr, c.Peer, c.PeerID, c.Service, c.Target, humanDuration(time.Duration(c.AgeSeconds*float64(time.Second))))
			}
			return t.flush()
		}),
	}
}
