package main

import (
	"path/filepath"
	"strconv"
)

// defaultSocket returns the control socket p2pctl talks to without --socket:
// $P2PD_NODE_CONTROL_SOCKET if set, else $XDG_RUNTIME_DIR/p2pd.sock, else
// /run/p2pd/p2pd.sock for root, else /tmp/p2pd-<uid>/p2pd.sock.
//
// It follows the same rule as config.DefaultControlSocket, which will replace
// it once the config package is in.
func defaultSocket(getenv func(string) string, uid int) string {
	if p := getenv("P2PD_NODE_CONTROL_SOCKET"); p != "" {
		return p
	}
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "p2pd.sock")
	}
	if uid == 0 {
		return "/run/p2pd/p2pd.sock"
	}
	return filepath.Join("/tmp", "p2pd-"+strconv.Itoa(uid), "p2pd.sock")
}
