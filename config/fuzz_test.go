package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad writes arbitrary bytes as a config file and loads it. Load must never panic; it
// either returns an error in the package's voice or a Config that validates with absolute paths.
func FuzzLoad(f *testing.F) {
	if data, err := os.ReadFile(examplePath); err == nil {
		f.Add(data)
	}
	f.Add([]byte(twoPeers + "[[services]]\nname = \"pg\"\ntarget = \"unix:/run/pg.sock\"\nallow = [\"*\"]\n"))
	for _, s := range schema { // one wrong-typed value per key
		header := "[" + s.name + "]"
		if s.array {
			header = "[" + header + "]"
		}
		header += "\n"
		for _, fl := range s.fields {
			f.Add([]byte(header + fl.name + " = 1\n"))
		}
	}
	dir := f.TempDir()
	for _, k := range Keys() {
		f.Setenv(envName(k), "")
	}
	f.Setenv(envConfig, "")
	f.Setenv("XDG_STATE_HOME", dir)
	f.Setenv("XDG_RUNTIME_DIR", dir)
	path := filepath.Join(dir, "p2pd.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "config: ") {
					t.Fatalf("error line not prefixed with the package: %q", line)
				}
			}
			if c != nil {
				t.Fatal("Load returned a Config along with an error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted a config that does not validate: %v", err)
		}
		for _, p := range []string{c.Node.KeyFile, c.Node.ControlSocket, c.Node.StateDir} {
			if !filepath.IsAbs(p) {
				t.Fatalf("path %q is not absolute", p)
			}
		}
	})
}
