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
			t := newTable(a.out, "PEER", "CARRIER", "REMOTE", "AGE", "RTT", "STREAMS", "CONNS", "SENT", "RECEIVED", "LOST", "GSO")
			for _, s := range sessions {
				t.row(s.Peer, s.Carrier, s.Remote, humanDuration(seconds(s.AgeSeconds)), humanMillis(s.RTTMillis),
					strconv.Itoa(s.Streams), strconv.Itoa(s.Conns), humanBytes(s.BytesSent), humanBytes(s.BytesReceived),
					lossText(s.PacketsLost, s.PacketsSent), onOff(s.GSO))
			}
			return t.flush()
		}),
	}
}

// lossText is lost packets and their share of those sent: "3 (0.1%)".
func lossText(lost, sent uint64) string {
	if lost == 0 || sent == 0 {
		return strconv.FormatUint(lost, 10)
	}
	return strconv.FormatUint(lost, 10) + " (" + strconv.FormatFloat(100*float64(lost)/float64(sent), 'f', 1, 64) + "%)"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
