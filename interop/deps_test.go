package interop

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/p2pd/p2pd"

// internalAllowed lists, for each product package, the project packages it
// may import directly (DESIGN.md §8: identity → handshake → transport → node
// → cmd; proxy, control and discovery never import node).
var internalAllowed = map[string][]string{
	"identity":  {},
	"handshake": {"identity"},
	"transport": {"identity", "handshake"},
	"proxy":     {},
	"control":   {},
	"config":    {"identity"},
	"node":      {"identity", "handshake", "transport", "proxy"},
	// The module root, package p2pd: the embedding API (Server) and the
	// wiring cmd/p2pd shares with it.
	"": {"identity", "config", "transport", "proxy", "node", "discovery"},
}

// TestRootImportedOnlyByCmd keeps the embedding API at the top: only the
// commands (and tests) build on package p2pd.
func TestRootImportedOnlyByCmd(t *testing.T) {
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		if strings.HasPrefix(r, "cmd/") {
			continue
		}
		for _, imp := range p.Imports {
			if imp == module {
				t.Errorf("%s imports the root package p2pd; only cmd/ may", r)
			}
		}
	}
}

// heavy maps each heavy dependency to the only packages that may import it.
var heavy = map[string][]string{
	"github.com/flynn/noise":              {"handshake"},
	"github.com/quic-go/quic-go":          {"transport", "discovery", "bench"}, // discovery: the shared UDP port
	"github.com/libp2p/go-libp2p":         {"discovery"},
	"github.com/libp2p/go-libp2p-kad-dht": {"discovery"},
	"github.com/multiformats":             {"discovery"},
	"go.uber.org/fx":                      {"discovery"},
	"github.com/spf13/viper":              {"config"},
	"github.com/spf13/cobra":              {"cmd/p2pd", "cmd/p2pctl"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-e", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

// topDir is the package's directory of the first level ("discovery/libp2p" → "discovery").
func topDir(r string) string {
	if strings.HasPrefix(r, "cmd/") {
		return r
	}
	top, _, _ := strings.Cut(r, "/")
	return top
}

func TestDependencyDirection(t *testing.T) {
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		allowed, ok := internalAllowed[topDir(r)]
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := topDir(rel(imp))
			if dep == topDir(r) {
				continue
			}
			if !containsStr(allowed, dep) {
				t.Errorf("%s imports %s: %s may import only %v", r, rel(imp), topDir(r), allowed)
			}
		}
	}
}

func TestHeavyDependenciesQuarantined(t *testing.T) {
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		for _, imp := range p.Imports {
			for dep, owners := range heavy {
				if imp != dep && !strings.HasPrefix(imp, dep+"/") {
					continue
				}
				if !containsStr(owners, topDir(r)) {
					t.Errorf("%s imports %s; only %v may", r, imp, owners)
				}
			}
		}
	}
}

// TestLightPackagesStayLight checks the transitive closure too: the
// packages at the bottom must not drag a heavy dependency in through another.
func TestLightPackagesStayLight(t *testing.T) {
	light := map[string][]string{
		"identity":  {"github.com/flynn/noise", "github.com/quic-go/quic-go", "github.com/libp2p/go-libp2p", "github.com/spf13/viper"},
		"handshake": {"github.com/quic-go/quic-go", "github.com/libp2p/go-libp2p", "github.com/spf13/viper"},
		"proxy":     {"github.com/quic-go/quic-go", "github.com/libp2p/go-libp2p", "github.com/spf13/viper", module + "/node"},
		"control":   {"github.com/quic-go/quic-go", "github.com/libp2p/go-libp2p", "github.com/spf13/viper", module + "/node"},
		"transport": {"github.com/libp2p/go-libp2p", "github.com/spf13/viper"},
	}
	for _, p := range listPackages(t) {
		banned, ok := light[rel(p.ImportPath)]
		if !ok {
			continue
		}
		for _, d := range p.Deps {
			for _, b := range banned {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s depends on %s (through another package)", rel(p.ImportPath), d)
				}
			}
		}
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
