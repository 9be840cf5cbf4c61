package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is p2pctl's release, the same as p2pd's (a test keeps the two in
// step).
const version = "0.1.0 (protocol p2pd/1)"

// versionText is what --version and `p2pctl version` print:
//
//	p2pctl 0.1.0 (protocol p2pd/1)
//	commit: 0123456789abcdef0123456789abcdef01234567-dirty
//	go:     go1.26.8 linux/amd64
//
// The commit comes from the VCS stamp `go build` puts in the binary, with
// "-dirty" when the work tree had changes; "unknown" without one.
func versionText() string {
	var settings []debug.BuildSetting
	if info, ok := debug.ReadBuildInfo(); ok {
		settings = info.Settings
	}
	return fmt.Sprintf("p2pctl %s\ncommit: %s\ngo:     %s %s/%s\n",
		version, commitOf(settings), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// commitOf reads vcs.revision and vcs.modified from the build settings.
func commitOf(settings []debug.BuildSetting) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

func versionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "Print p2pctl's version, the commit it was built from and the Go version",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{offlineAnnotation: "true"},
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(a.out, versionText())
			return err
		},
	}
}
