package main

import (
	"log/slog"

	"github.com/p2pd/p2pd/config"
)

// noPeersHint is the next step on a node that trusts nobody yet; `p2pctl
// status` says the same.
const noPeersHint = "no peers yet: run `p2pd id` on the other host and add it with `p2pctl trust add NAME ID`"

// logConfig says at start which config the daemon loaded and, on a node
// that trusts nobody yet, what to do next.
func logConfig(log *slog.Logger, cfg *config.Config) {
	file := cfg.Path
	if file == "" {
		file = "defaults (no config file)"
	}
	log.Info("config loaded", "file", file, "peers", len(cfg.Peers), "services", len(cfg.Services), "forwards", len(cfg.Forwards))
	if len(cfg.Peers) == 0 {
		log.Info(noPeersHint)
	}
}
