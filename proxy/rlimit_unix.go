//go:build unix

package proxy

import "syscall"

// nofileLimit returns the process's soft RLIMIT_NOFILE, read when asked so
// that a limit changed from outside (prlimit) shows.
func nofileLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return uint64(r.Cur), true
}
