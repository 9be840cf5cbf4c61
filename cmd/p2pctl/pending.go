package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func pendingCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "pending",
		Short: "List keys whose handshakes were refused recently because they are not trusted",
		Long: "List the peer IDs whose handshakes the daemon refused recently (the latest 64), with\n" +
			"the address of their last attempt, so that a newcomer can be trusted with\n" +
			"`p2pctl trust add NAME ID`. A peer of an older release does not state its ID, only its\n" +
			"key, which fixes the ID up to one bit: its entry shows two IDs, and `p2pd id` on that\n" +
			"host prints the one it uses; either admits it.",
		Args: cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			ps, err := a.client().Pending(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string][]control.Pending{"pending": nonNil(ps)})
			}
			if len(ps) == 0 {
				_, err := fmt.Fprintln(a.out, "no refused handshakes")
				return err
			}
			now := time.Now()
			t := newTable(a.out, "ID", "CLAIMS-NAME", "REMOTE", "CARRIER", "COUNT", "FIRST-SEEN", "LAST-SEEN")
			for _, p := range ps {
				first, last := p.FirstSeen, p.LastSeen
				t.row(p.ID, p.Name, p.Remote, p.Carrier, strconv.FormatUint(p.Count, 10), ago(&first, now), ago(&last, now))
			}
			if err := t.flush(); err != nil {
				return err
			}
			alt := false
			for _, p := range ps {
				if p.AltID != "" {
					alt = true
					fmt.Fprintf(a.out, "%s: the same key is also %s\n", p.ID, p.AltID)
				}
			}
			hint := "trust one with: p2pctl trust add NAME ID"
			if alt {
				hint += " (of the two forms of a key, the one `p2pd id` prints on that host)"
			}
			_, err = fmt.Fprintln(a.out, hint)
			return err
		}),
	}
}
