package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGluedTableHeaderMended(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p2pd.toml")
	data := "[node]\nname = \"x\"\n\n[[peers]]\nname = \"a\"\nid = \"" + idDB + "\"[[peers]]\nname = \"b\"\nid = \"" + idWeb + "\"\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Peers) != 2 || c.Peers[1].Name != "b" {
		t.Fatalf("peers: %+v", c.Peers)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], ":6:") {
		t.Fatalf("warnings: %q", c.Warnings)
	}
	// Other syntax errors are still refused.
	os.WriteFile(path, []byte("[node]\nname = \"x\" junk\n"), 0o600)
	if _, err := Load(path); err == nil {
		t.Fatal("a syntax error was accepted")
	}
}
