package main

import (
	"log"
	"log/slog"

	"github.com/p2pd/p2pd/discovery"
)

// routeForeignLogs sends what libraries log on their own through the
// daemon's logger, so that every line on stderr has the configured format:
// libp2p and its DHT (see discovery.RouteLibp2pLogs), and the standard log
// package (the mDNS library writes "[ERR] zeroconf: ..." there), whose lines
// become warnings.
func routeForeignLogs(l *slog.Logger) {
	discovery.RouteLibp2pLogs(l.Handler())
	slog.SetDefault(l)
	slog.SetLogLoggerLevel(slog.LevelWarn)
	log.SetFlags(0) // the handler adds the time
}
