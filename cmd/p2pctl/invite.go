package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func inviteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "invite",
		Short: "Print this node's invite line, for p2pctl trust add on another node",
		Long: "Print one line that carries this node's peer ID, name and addresses (its listen\n" +
			"addresses, a wildcard expanded to the interfaces' addresses, with the UDP and TCP ports).\n" +
			"On another node, `p2pctl trust add NAME LINE` trusts this one.",
		Args: cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			inv, err := a.client().Invite(ctx)
			if err != nil {
				return err
			}
			if a.json {
				inv.Addresses = nonNil(inv.Addresses)
				return printJSON(a.out, inv)
			}
			fmt.Fprintln(a.out, inv.Line)
			describeInvite(a, inv)
			return nil
		}),
	}
}

// describeInvite says on stderr what the line carries, so that stdout is
// the line alone.
func describeInvite(a *app, inv control.Invite) {
	addrs := "none (the other node needs discovery or addresses of its own)"
	if len(inv.Addresses) > 0 {
		addrs = strings.Join(inv.Addresses, ", ")
	}
	fmt.Fprintf(a.errOut, "%s (%s), addresses: %s\non the other node: p2pctl trust add %s <the line above>\n", inv.Name, inv.ID, addrs, inv.Name)
}
