package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func servicesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "services",
		Short: "List local services exposed to peers",
		Args:  cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			services, err := a.client().Services(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string][]control.Service{"services": nonNil(services)})
			}
			t := newTable(a.out, "NAME", "PROTOCOL", "TARGET", "ALLOW", "ACTIVE", "TOTAL")
			for _, s := range services {
				allow := strings.Join(s.Allow, ",")
				if allow == "" {
					allow = "(nobody)"
				}
				t.row(s.Name, s.Protocol, s.Target, allow, strconv.Itoa(s.Active), strconv.FormatUint(s.Total, 10))
			}
			return t.flush()
		}),
	}
}
