package proxy

import "net"

// WrapServerListen makes s open its listeners through wrap, for tests that
// give a proxy a listener whose Accept fails.
func WrapServerListen(s *Server, wrap func(net.Listener) net.Listener) {
	s.listen = func(addr string) (net.Listener, error) {
		ln, err := listenForward(addr)
		if err != nil {
			return nil, err
		}
		return wrap(ln), nil
	}
}
