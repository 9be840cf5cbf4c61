// Command bench puts p2pd beside direct TCP, raw quic-go, a minimal quic-go
// tunnel and stunnel4, in one run, with the systems measured interleaved:
// for every repetition and every figure, each system in turn (the order
// rotates between repetitions so that none always runs first).
//
// p2pd is driven only as built binaries (p2pd, p2pctl) with config files,
// the way a user runs it; nothing here imports p2pd's packages. The same
// binary also serves as the helper processes the run starts:
//
//	bench [run] [flags]       the benchmark (the default); see -help
//	bench [run] -scale N ...  only the scale measurement: N daemons in namespaces (scale.go)
//	bench backend ...         echo and bulk servers (the targets of every tunnel)
//	bench qtun-server ...     quic-go tunnel server (or raw quic-go server with -inproc)
//	bench qtun-client ...     quic-go tunnel client
//
// The systems, all in the same client → tunnel client → tunnel server →
// backend topology except the first two:
//
//	tcp          harness ──TCP──▶ backend
//	quic-raw     harness ══QUIC══▶ server (one connection, one stream per use; no TCP legs)
//	quic-tunnel  harness ─▶ qtun-client ══QUIC══▶ qtun-server ─▶ backend
//	stunnel      harness ─▶ stunnel client ══TLS/TCP══▶ stunnel server ─▶ backend
//	p2pd         harness ─▶ p2pd A (forward) ══QUIC+Noise══▶ p2pd B (service) ─▶ backend
//
// Every QUIC baseline uses quic-go at the version p2pd uses, with p2pd's
// flow-control windows.
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		if scaleRequested(args) {
			err = runScale(args)
		} else {
			err = runBench(args)
		}
	case "backend":
		err = runBackend(args)
	case "qtun-server":
		err = runQtunServer(args)
	case "qtun-client":
		err = runQtunClient(args)
	default:
		err = fmt.Errorf("bench: unknown command %q (want run, backend, qtun-server or qtun-client)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
