package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func reloadCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon re-read its configuration (trust list, services, ACLs)",
		Long: "Make the daemon re-read its configuration. A configuration that fails to load\n" +
			"changes nothing, and the error says why.",
		Args: cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			if err := a.client().Reload(ctx); err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string]bool{"reloaded": true})
			}
			_, err := fmt.Fprintln(a.out, "configuration reloaded")
			return err
		}),
	}
}
