package identity

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps identity at the bottom of the dependency graph
// (DESIGN.md §8): no libp2p, no Noise, no QUIC.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/libp2p/", "github.com/flynn/noise", "github.com/quic-go/", "github.com/p2pd/p2pd/"} {
			if strings.HasPrefix(dep, banned) && dep != "github.com/p2pd/p2pd/identity" {
				t.Errorf("identity depends on %s", dep)
			}
		}
	}
}
