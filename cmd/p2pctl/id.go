package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func idCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "id",
		Short: "Print the daemon's peer ID",
		Args:  cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			st, err := a.client().Status(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string]string{"id": st.ID})
			}
			_, err = fmt.Fprintln(a.out, st.ID)
			return err
		}),
	}
}
