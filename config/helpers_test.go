package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two real peer IDs (made with identity.GenerateKey).
const (
	idDB  = "12D3KooWGiyFz16HvwohCWjtg5XjjbzYAVJWtQyfLPvJuMjeerrR"
	idWeb = "12D3KooWCMQDonz2c22E3Jz3r8G4rEXHp3xSirvvaZwC4qFcF4Yz"
)

// isolate clears every variable Load reads so that the host's environment cannot leak into a
// test, and points the XDG directories at fresh temporary ones. It returns the state home.
func isolate(t *testing.T) (stateHome, runtimeDir string) {
	t.Helper()
	for _, k := range Keys() {
		t.Setenv(envName(k), "")
	}
	t.Setenv(envConfig, "")
	stateHome, runtimeDir = t.TempDir(), t.TempDir()
	t.Setenv("XDG_STATE_HOME", stateHome)
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	return stateHome, runtimeDir
}

// writeFile writes content to name in a fresh temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadString writes content as p2pd.toml and loads it.
func loadString(t *testing.T, content string) (*Config, error) {
	t.Helper()
	return Load(writeFile(t, "p2pd.toml", content))
}

// messages splits a joined error into its lines, one problem each.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return strings.Split(err.Error(), "\n")
}

// twoPeers is a valid [[peers]] section for tests that need names to refer to.
const twoPeers = `
[[peers]]
name = "db"
id = "` + idDB + `"

[[peers]]
name = "web1"
id = "` + idWeb + `"
`
