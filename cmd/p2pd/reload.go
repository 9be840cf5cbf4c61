package main

import (
	"context"
	"fmt"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/control"
)

var _ control.ReloadReporter = backend{}

// ReloadReport reloads and tells p2pctl what the reload did not apply.
func (b backend) ReloadReport(context.Context) (control.ReloadResult, error) { return b.d.reload() }

// restartNeeded names the tables in which cfg differs from the config the
// daemon started with (old), which a reload does not apply: the node's
// sockets and identity, discovery's libp2p host, the metrics listener and
// the logger are made once, at start. (Peers, services, forwards and
// [proxy] are applied.) A change stays listed at every reload until a
// restart, or until the file has the old values again.
func restartNeeded(old, cfg *config.Config) []string {
	var out []string
	for _, t := range []struct {
		name     string
		old, new any
	}{
		{"node", old.Node, cfg.Node},
		{"discovery", old.Discovery, cfg.Discovery},
		{"metrics", old.Metrics, cfg.Metrics},
		{"log", old.Log, cfg.Log},
	} {
		if fmt.Sprint(t.old) != fmt.Sprint(t.new) {
			out = append(out, t.name)
		}
	}
	return out
}
