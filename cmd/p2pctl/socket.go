package main

import (
	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/control"
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

// checkSocket runs before every subcommand, on the socket from --socket or
// defaultSocket alike: in a directory others can write to, such as the
// fallback /tmp/p2pd-<uid> without XDG_RUNTIME_DIR, p2pctl talks only to a
// socket in a directory of this user's, mode 0700, owned by this user or
// root (control.CheckSocket). A refusal is a runtime failure (exit 1), as
// finding no daemon is.
func checkSocket(path string) error {
	if err := control.CheckSocket(path); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	return nil
}
