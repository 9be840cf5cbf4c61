package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionText is what --version and `p2pd version` print:
//
//	p2pd 0.1.0 (protocol p2pd/1)
//	commit: 0123456789abcdef0123456789abcdef01234567-dirty
//	go:     go1.26.8 linux/amd64
//
// The commit comes from the VCS stamp `go build` puts in the binary, with
// "-dirty" when the work tree had changes; "unknown" without one (go run,
// go test, -buildvcs=false).
func versionText(command string) string {
	var settings []debug.BuildSetting
	if info, ok := debug.ReadBuildInfo(); ok {
		settings = info.Settings
	}
	return fmt.Sprintf("%s %s\ncommit: %s\ngo:     %s %s/%s\n",
		command, version, commitOf(settings), runtime.Version(), runtime.GOOS, runtime.GOARCH)
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

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version, the commit it was built from and the Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), versionText("p2pd"))
			return err
		},
	}
}
