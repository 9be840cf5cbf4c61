package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func reloadCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon re-read its configuration (trust list, services, ACLs)",
		Long: "Make the daemon re-read its configuration. A configuration that fails to load\n" +
			"changes nothing, and the error says why. Changes to [node], [discovery], [metrics]\n" +
			"and [log] take effect at the next restart; reload says which it left.",
		Args: cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			res, err := a.client().ReloadReport(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, struct {
					Reloaded bool `json:"reloaded"`
					control.ReloadResult
				}{true, res})
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(a.errOut, "warning:", w)
			}
			if len(res.RestartNeeded) == 0 {
				_, err = fmt.Fprintln(a.out, "configuration reloaded")
				return err
			}
			tables := make([]string, len(res.RestartNeeded))
			for i, t := range res.RestartNeeded {
				tables[i] = "[" + t + "]"
			}
			_, err = fmt.Fprintf(a.out, "configuration reloaded; %s changes take effect after a restart of p2pd\n", joinAnd(tables))
			return err
		}),
	}
}

// joinAnd joins "a", "b", "c" as "a, b and c".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
