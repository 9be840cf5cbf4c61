package config

import (
	"os"
	"path/filepath"
	"strconv"
)

const (
	envConfig       = "P2PD_CONFIG"
	defaultFileName = "p2pd.toml"
	socketName      = "p2pd.sock"
)

// DefaultPath is the config file used when none is named: $P2PD_CONFIG, else
// DefaultStateDir()/p2pd.toml.
func DefaultPath() string {
	if p := os.Getenv(envConfig); p != "" {
		return p
	}
	return filepath.Join(DefaultStateDir(), defaultFileName)
}

// DefaultStateDir is where the key and state live without a config file:
// $XDG_STATE_HOME/p2pd, else /var/lib/p2pd for root, else ~/.local/state/p2pd.
func DefaultStateDir() string {
	if x := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(x) { // the XDG spec ignores relative values
		return filepath.Join(x, "p2pd")
	}
	if os.Getuid() == 0 {
		return "/var/lib/p2pd"
	}
	home, err := os.UserHomeDir()
	if err != nil || !filepath.IsAbs(home) {
		// No usable home: a per-user directory that the daemon creates 0700 and checks.
		return filepath.Join(os.TempDir(), "p2pd-"+strconv.Itoa(os.Getuid()), "state")
	}
	return filepath.Join(home, ".local", "state", "p2pd")
}

// DefaultControlSocket is the control socket used when the config names none:
// $XDG_RUNTIME_DIR/p2pd.sock, else /run/p2pd/p2pd.sock for root, else /tmp/p2pd-<uid>/p2pd.sock.
// Any user can make /tmp/p2pd-<uid> first, so control.Listen creates it with
// Mkdir 0700 and refuses it unless it is a real directory of this user's with
// mode 0700, and p2pctl checks the same (control.CheckSocket) before dialing:
// both apply that rule to any socket directory inside a directory others can
// write to, which is how they recognise this one.
func DefaultControlSocket() string {
	if x := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(x) {
		return filepath.Join(x, socketName)
	}
	if os.Getuid() == 0 {
		return filepath.Join("/run/p2pd", socketName)
	}
	return filepath.Join("/tmp", "p2pd-"+strconv.Itoa(os.Getuid()), socketName)
}
