package main

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func proxiesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "proxies",
		Short: "List the local SOCKS5 and HTTP proxies, their connections and errors by kind",
		Args:  cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			proxies, err := a.client().Proxies(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string][]control.Proxy{"proxies": nonNil(proxies)})
			}
			t := newTable(a.out, "KIND", "LISTEN", "AUTH", "ACTIVE", "MAX", "TOTAL", "REFUSED", "EVICTED", "ACCEPT-ERRORS", "ERRORS")
			for _, p := range proxies {
				auth := "off"
				if p.Auth {
					auth = "on"
				}
				t.row(p.Kind, p.Listen, auth, strconv.Itoa(p.Active), strconv.Itoa(p.MaxConnections),
					strconv.FormatUint(p.Total, 10), strconv.FormatUint(p.Refused, 10), strconv.FormatUint(p.Evicted, 10),
					strconv.FormatUint(p.AcceptErrors, 10), errorCounts(p.Errors))
			}
			return t.flush()
		}),
	}
}

// errorCounts formats errors by kind as "access_denied=2 not_p2p=5", kinds in order.
func errorCounts(m map[string]uint64) string {
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = k + "=" + strconv.FormatUint(m[k], 10)
	}
	return strings.Join(parts, " ")
}
