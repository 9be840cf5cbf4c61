package main

import (
	"context"
	"errors"
	"os"

	"github.com/p2pd/p2pd/config"
	"github.com/p2pd/p2pd/control"
	"github.com/p2pd/p2pd/node"
	"github.com/p2pd/p2pd/proxy"
	"github.com/p2pd/p2pd/transport"
)

// proxyConfig is the [proxy] table as the proxy package takes it.
func proxyConfig(cfg *config.Config) proxy.Config {
	p := cfg.Proxy
	return proxy.Config{SOCKS5: p.SOCKS5, HTTP: p.HTTP, Username: p.Username, Password: p.Password,
		MaxConnections: p.MaxConnections}
}

// classifyOverlayError tells the proxy what went wrong in a dial through the
// node. The proxy imports neither node nor transport, whose errors these
// are; this is the one place that knows both sides.
func classifyOverlayError(err error) proxy.ErrorKind {
	var se *transport.StatusError
	switch {
	case errors.As(err, &se):
		switch se.Status {
		case transport.StatusUnknownService:
			return proxy.KindUnknownService
		case transport.StatusAccessDenied:
			return proxy.KindAccessDenied
		case transport.StatusTargetRefused:
			return proxy.KindTargetRefused
		case transport.StatusTargetUnreachable:
			return proxy.KindTargetUnreachable
		case transport.StatusOverloaded:
			return proxy.KindOverloaded
		case transport.StatusBadRequest:
			return proxy.KindBadRequest
		}
		return proxy.KindOther
	case errors.Is(err, node.ErrUnknownPeer):
		return proxy.KindUnknownPeer
	case errors.As(err, new(*node.PeerError)):
		// The node's sentence on why the peer cannot be reached; a
		// timeout inside it is the peer's, not this connection's.
		return proxy.KindPeerUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return proxy.KindTimeout
	}
	// Everything else kept the stream from being opened or answered: no
	// session could be had, the session died, the stream was reset.
	return proxy.KindPeerUnreachable
}

func (b backend) Proxies(context.Context) ([]control.Proxy, error) {
	var out []control.Proxy
	for _, p := range b.d.prx.Stats() {
		out = append(out, control.Proxy{Kind: p.Kind, Listen: p.Listen, Auth: p.Auth, MaxConnections: p.MaxConnections,
			Active: p.Active, Total: p.Total, Refused: p.Refused, Evicted: p.Evicted, AcceptErrors: p.AcceptErrors, Errors: p.Errors})
	}
	return out, nil
}
