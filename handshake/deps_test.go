package handshake

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps handshake free of I/O-heavy dependencies (DESIGN.md
// §8): within the project it may import only identity, and never libp2p or
// QUIC.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "github.com/libp2p/"), strings.HasPrefix(dep, "github.com/quic-go/"):
			t.Errorf("handshake depends on %s", dep)
		case strings.HasPrefix(dep, "github.com/p2pd/p2pd/") &&
			dep != "github.com/p2pd/p2pd/handshake" && dep != "github.com/p2pd/p2pd/identity":
			t.Errorf("handshake depends on %s", dep)
		}
	}
}
