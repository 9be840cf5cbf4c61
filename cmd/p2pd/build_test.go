package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// buildP2PD builds this command with `go build` once per test run and
// returns the binary's path: a binary stamped with its VCS revision, as an
// installed p2pd is, unlike the test binary. -buildvcs=auto overrides a
// GOFLAGS=-buildvcs=false in the environment.
func buildP2PD(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "p2pd-bin")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "p2pd")
		built.out, built.err = exec.Command("go", "build", "-buildvcs=auto", "-o", built.path, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.path
}

// TestVersionStamped: a built p2pd names the commit it was built from.
func TestVersionStamped(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git work tree with git installed (%v): no VCS stamp to check", err)
	}
	out, err := exec.Command(buildP2PD(t), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !versionRE.Match(out) {
		t.Fatalf("--version printed %q, want the shape %s", out, versionRE)
	}
	want := regexp.MustCompile(`(?m)^commit: ` + strings.TrimSpace(string(head)) + `(-dirty)?$`)
	if !want.Match(out) {
		t.Errorf("--version printed %q, want commit %s", out, head)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	if code == 0 {
		// The in-process daemons of TestNotify must leave nothing running.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left running:", err)
			code = 1
		}
	}
	os.Exit(code)
}
