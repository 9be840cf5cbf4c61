package proxy

import "net"

// WrapListen makes f open its listeners through wrap, for tests that give
// a forward a listener whose Accept fails.
func WrapListen(f *Forwarder, wrap func(net.Listener) net.Listener) {
	f.listen = func(addr string) (net.Listener, error) {
		ln, err := listenForward(addr)
		if err != nil {
			return nil, err
		}
		return wrap(ln), nil
	}
}
