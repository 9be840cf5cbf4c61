//go:build !unix

package proxy

// nofileLimit is unknown where there is no RLIMIT_NOFILE.
func nofileLimit() (uint64, bool) { return 0, false }
