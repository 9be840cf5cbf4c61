package main

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/p2pd/p2pd/control"
)

func sessionsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "sessions",
		Short: "List live sessions with traffic counters",
		Args:  cobra.NoArgs,
		RunE: a.action(func(ctx context.Context, _ []string) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			sessions, err := a.client().Sessions(ctx)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string][]control.Session{"sessions": nonNil(sessions)})
			}
			t := newTable(a.out, "PEER", "REMOTE", "AGE", "RTT", "STREAMS", "SENT", "RECEIVED")
			for _, s := range sessions {
				t.row(s.Peer, s.Remote, humanDuration(seconds(s.AgeSeconds)), humanMillis(s.RTTMillis),
					strconv.Itoa(s.Streams), humanBytes(s.BytesSent), humanBytes(s.BytesReceived))
			}
			return t.flush()
		}),
	}
}
