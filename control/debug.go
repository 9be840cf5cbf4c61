package control

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// DebugPrefix is where the daemon's Go runtime profiles are served, for an
// operator chasing CPU or memory:
//
//	curl --unix-socket /run/p2pd/control.sock -o cpu.pprof \
//	    'http://p2pd/debug/pprof/profile?seconds=10'
//	go tool pprof cpu.pprof
//
// They sit behind the same socket mode and peer-credential check as /v1.
const DebugPrefix = "/debug/pprof/"

// serveDebug answers a request under DebugPrefix with net/http/pprof.
func serveDebug(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, DebugPrefix) {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	default: // the index and every named profile: heap, goroutine, allocs ...
		pprof.Index(w, r)
	}
}
