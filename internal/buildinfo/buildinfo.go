// Package buildinfo is what a p2pd or p2pctl binary knows about its own
// build: the release, the commit it was built from and the Go toolchain.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release of p2pd and p2pctl, which ship together; p2pd
// also reports it in its status and its build_info metric.
const Version = "0.1.0 (protocol p2pd/1)"

// Text is what --version and `<command> version` print:
//
//	p2pd 0.1.0 (protocol p2pd/1)
//	commit: 0123456789abcdef0123456789abcdef01234567-dirty
//	go:     go1.26.8 linux/amd64
func Text(command string) string {
	return fmt.Sprintf("%s %s\ncommit: %s\ngo:     %s %s/%s\n",
		command, Version, Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Commit is the VCS revision `go build` stamped into the binary, with
// "-dirty" when the work tree had changes; "unknown" without a stamp (go
// run, go test, -buildvcs=false).
func Commit() string {
	var settings []debug.BuildSetting
	if info, ok := debug.ReadBuildInfo(); ok {
		settings = info.Settings
	}
	return commitOf(settings)
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
