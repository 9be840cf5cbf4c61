package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestRelativePathsResolveAgainstFile(t *testing.T) {
	_, runtimeDir := isolate(t)
	dir := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p2pd.toml"),
		[]byte("[node]\nkey_file = \"keys/id.key\"\ncontrol_socket = \"../run/p.sock\"\nstate_dir = \"state\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(dir))
	c, err := Load(filepath.Join("etc", "p2pd.toml")) // a relative path to the file itself
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ what, got, want string }{
		{"Path", c.Path, filepath.Join(dir, "p2pd.toml")},
		{"Dir", c.Dir, dir},
		{"key_file", c.Node.KeyFile, filepath.Join(dir, "keys", "id.key")},
		{"control_socket", c.Node.ControlSocket, filepath.Join(filepath.Dir(dir), "run", "p.sock")},
		{"state_dir", c.Node.StateDir, filepath.Join(dir, "state")},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.what, ch.got, ch.want)
		}
	}

	// Keys left out: key and state next to the file, socket in the runtime directory.
	c, err = Load(writeFile(t, "p2pd.toml", "[node]\nname = \"a\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.KeyFile != filepath.Join(c.Dir, "identity.key") || c.Node.StateDir != c.Dir ||
		c.Node.ControlSocket != filepath.Join(runtimeDir, "p2pd.sock") {
		t.Errorf("defaults with a file: key %q state %q socket %q (dir %q)", c.Node.KeyFile, c.Node.StateDir, c.Node.ControlSocket, c.Dir)
	}

	// Absolute paths stay as written.
	c, err = Load(writeFile(t, "p2pd.toml", "[node]\nkey_file = \"/srv/k\"\ncontrol_socket = \"/srv/s\"\nstate_dir = \"/srv\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.KeyFile != "/srv/k" || c.Node.ControlSocket != "/srv/s" || c.Node.StateDir != "/srv" {
		t.Errorf("absolute paths changed: %+v", c.Node)
	}
}

func TestMissingDefaultFileGivesDefaults(t *testing.T) {
	stateHome, runtimeDir := isolate(t)
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(stateHome, "p2pd")
	want := Config{
		Dir: dir,
		Node: Node{
			Name:          defaultName(),
			KeyFile:       filepath.Join(dir, "identity.key"),
			Listen:        []string{"0.0.0.0:4242", "[::]:4242"},
			ControlSocket: filepath.Join(runtimeDir, "p2pd.sock"),
			StateDir:      dir,
		},
		Discovery: Discovery{MDNS: true},
		Log:       Log{Level: "info", Format: "text"},
	}
	if c.Path != want.Path || c.Dir != want.Dir || c.Node.Name != want.Node.Name || c.Node.KeyFile != want.Node.KeyFile ||
		!slices.Equal(c.Node.Listen, want.Node.Listen) || c.Node.ControlSocket != want.Node.ControlSocket ||
		c.Node.StateDir != want.Node.StateDir || c.Discovery.MDNS != true || c.Discovery.DHT || c.Log != want.Log ||
		len(c.Peers)+len(c.Services)+len(c.Forwards) != 0 {
		t.Fatalf("got  %+v\nwant %+v", *c, want)
	}

	// Once the default file exists, Load("") reads it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(DefaultPath(), []byte("[node]\nname = \"beta\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Name != "beta" || c.Path != filepath.Join(dir, "p2pd.toml") {
		t.Fatalf("default file not read: name %q path %q", c.Node.Name, c.Path)
	}
}

func TestMissingExplicitFile(t *testing.T) {
	isolate(t)
	path := filepath.Join(t.TempDir(), "nope.toml")
	for _, viaEnv := range []bool{false, true} {
		arg := path
		if viaEnv {
			t.Setenv(envConfig, path)
			arg = ""
		}
		_, err := Load(arg)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("via env %v: err = %v, want ErrNotFound", viaEnv, err)
		}
		want := "config: " + path + ": config file not found; create it with `p2pd init --config " + path + "`"
		if err.Error() != want {
			t.Fatalf("via env %v:\ngot  %q\nwant %q", viaEnv, err, want)
		}
	}
}

func TestUnreadableFile(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Load(directory) = %v, want a read error", err)
	}
	big := writeFile(t, "big.toml", "# "+strings.Repeat("x", maxFileSize)+"\n")
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Load(big) = %v, want a size error", err)
	}
}

func TestDefaultDirectories(t *testing.T) {
	isolate(t)
	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	t.Setenv("XDG_RUNTIME_DIR", "/xdg/run")
	if got := DefaultStateDir(); got != "/xdg/state/p2pd" {
		t.Errorf("DefaultStateDir() = %q", got)
	}
	if got := DefaultPath(); got != "/xdg/state/p2pd/p2pd.toml" {
		t.Errorf("DefaultPath() = %q", got)
	}
	if got := DefaultControlSocket(); got != "/xdg/run/p2pd.sock" {
		t.Errorf("DefaultControlSocket() = %q", got)
	}
	t.Setenv(envConfig, "/etc/p2pd.toml")
	if got := DefaultPath(); got != "/etc/p2pd.toml" {
		t.Errorf("DefaultPath() with $P2PD_CONFIG = %q", got)
	}

	t.Setenv("XDG_STATE_HOME", "relative") // ignored, as the XDG spec says
	t.Setenv("XDG_RUNTIME_DIR", "")
	wantState, wantSock := "/var/lib/p2pd", "/run/p2pd/p2pd.sock"
	if uid := os.Getuid(); uid != 0 {
		home, _ := os.UserHomeDir()
		wantState = filepath.Join(home, ".local", "state", "p2pd")
		wantSock = "/tmp/p2pd-" + strconv.Itoa(uid) + "/p2pd.sock"
	}
	if got := DefaultStateDir(); got != wantState {
		t.Errorf("DefaultStateDir() = %q, want %q", got, wantState)
	}
	if got := DefaultControlSocket(); got != wantSock {
		t.Errorf("DefaultControlSocket() = %q, want %q", got, wantSock)
	}
}
