package discovery

import "go.uber.org/goleak"

// leakIgnores are goroutines that libp2p and its dependencies start once per
// process and never stop.
var leakIgnores = []goleak.Option{}
