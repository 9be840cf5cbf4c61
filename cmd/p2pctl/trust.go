package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

// trustCmd is `p2pctl trust add|rm`: changes to the trust list, applied at
// once by the daemon through its reload path and kept in its trust file
// (the config file is never rewritten).
func trustCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Add peers to the trust list, or remove them, without editing the config file",
		Long: "Add peers to the trust list, or remove them. The daemon applies the change at once, as a\n" +
			"reload would, and keeps it in the trust file of its state directory (trust.toml); the\n" +
			"config file is never rewritten.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.errOut)
			cmd.Usage()
			return usageError("trust: missing subcommand (add or rm)")
		},
	}
	cmd.AddCommand(trustAddCmd(a), trustRmCmd(a))
	return cmd
}

func trustAddCmd(a *app) *cobra.Command {
	var allow []string
	cmd := &cobra.Command{
		Use:   "add NAME ID|INVITE",
		Short: "Trust a peer by its peer ID or its invite line, under NAME",
		Long: "Trust a peer under NAME. The peer is given by its peer ID (12D3KooW..., from `p2pd id` on\n" +
			"that host or from `p2pctl pending`) or by its invite line (p2pd1:..., from `p2pctl invite`\n" +
			"on that host), which also carries its addresses. --allow adds it to services' allow lists.",
		Args: cobra.ArbitraryArgs,
		RunE: a.action(func(ctx context.Context, args []string) error {
			if len(args) != 2 {
				return usageError("trust add takes NAME and a peer ID or invite line, got %d arguments", len(args))
			}
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			ch, err := a.client().TrustAdd(ctx, control.TrustAddRequest{Name: args[0], Peer: strings.TrimSpace(args[1]), Allow: allow})
			if err != nil {
				return trustError(err)
			}
			if a.json {
				return printJSON(a.out, ch)
			}
			fmt.Fprintf(a.out, "trusted %s (%s)", ch.Name, ch.ID)
			if len(ch.Addresses) > 0 {
				fmt.Fprintf(a.out, " at %s", strings.Join(ch.Addresses, ", "))
			}
			fmt.Fprintln(a.out)
			if len(ch.Allowed) > 0 {
				fmt.Fprintf(a.out, "%s may use: %s\n", ch.Name, strings.Join(ch.Allowed, ", "))
			} else {
				fmt.Fprintf(a.out, "%s may use no service yet (add --allow SERVICE, or name it in a service's allow list)\n", ch.Name)
			}
			_, err = fmt.Fprintf(a.out, "recorded in %s\n", ch.TrustFile)
			return err
		}),
	}
	cmd.Flags().StringSliceVar(&allow, "allow", nil, "a service this peer may use (repeat, or separate with commas)")
	return cmd
}

func trustRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove"},
		Short:   "Stop trusting a peer: take it out of the trust list and every allow list",
		Long: "Stop trusting the peer NAME at once: its sessions and streams close, and it leaves every\n" +
			"allow list. A peer of the config file is recorded as removed in the trust file, since\n" +
			"the config file is not edited.",
		Args: cobra.ArbitraryArgs,
		RunE: a.action(func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usageError("trust rm takes one NAME, got %d arguments", len(args))
			}
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			ch, err := a.client().TrustRemove(ctx, args[0])
			if err != nil {
				return trustError(err)
			}
			if a.json {
				return printJSON(a.out, ch)
			}
			if len(ch.Allowed) > 0 {
				fmt.Fprintf(a.out, "removed %s; it was allowed to: %s\n", ch.Name, strings.Join(ch.Allowed, ", "))
			} else {
				fmt.Fprintf(a.out, "removed %s; it was allowed to use no service\n", ch.Name)
			}
			if ch.Closed > 0 {
				fmt.Fprintf(a.out, "closed its session\n")
			}
			if ch.Origin == "config" {
				_, err = fmt.Fprintf(a.out, "%s is listed in the config file, which is unchanged; the removal is recorded in %s\n", ch.Name, ch.TrustFile)
			} else {
				_, err = fmt.Fprintf(a.out, "recorded in %s\n", ch.TrustFile)
			}
			return err
		}),
	}
}

// trustError gives a change the daemon refused as asked exit code 2.
func trustError(err error) error {
	var re *control.RejectedError
	if errors.As(err, &re) {
		return refusal(err)
	}
	return err
}
