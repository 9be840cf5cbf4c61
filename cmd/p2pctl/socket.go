package main

import (
	"github.com/p2pd/p2pd/config"
)

// defaultSocket returns the control socket p2pctl talks to without --socket:
// $P2PD_NODE_CONTROL_SOCKET if set; else the control_socket of the config
// that `p2pd run` would load without --config ($P2PD_CONFIG or the state
// directory's p2pd.toml); else the daemon's default socket.
func defaultSocket(getenv func(string) string) string {
	if p := getenv("P2PD_NODE_CONTROL_SOCKET"); p != "" {
		return p
	}
	if cfg, err := config.Load(""); err == nil && cfg.Node.ControlSocket != "" {
		return cfg.Node.ControlSocket
	}
	return config.DefaultControlSocket()
}
